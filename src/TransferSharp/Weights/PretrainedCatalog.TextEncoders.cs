namespace TransferSharp.Weights;

internal static partial class PretrainedCatalog
{
    /// <summary>Hub repositories of the catalog's text encoders, each pinned to one commit. The large (LFS) weight files
    /// carry their SHA-256 (the hub shows it on the file's page; both were matched in two independent public pins);
    /// small files carry theirs where a public pin gives it, else only the commit in the URL pins them.</summary>
    private static readonly (string Model, string Repository, string Commit, string License, string Recipe, (string Path, string? Sha256)[] Files)[] HubTextEncoders =
    [
        ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "1110a243fdf4706b3f48f1d95db1a4f5529b4d41", "apache-2.0",
            "sentence-transformers' MiniLM-L6 trained on 1B sentence pairs; mean pooling, normalised, 256 tokens, 384-d",
            [
                ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                ("tokenizer_config.json", null),
                ("special_tokens_map.json", null),
                ("sentence_bert_config.json", null),
                ("modules.json", null),
                ("1_Pooling/config.json", null),
            ]),
        ("bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a", "mit",
            "BAAI's BGE small English v1.5 for retrieval; CLS pooling, normalised, 512 tokens, 384-d (queries may take the prefix \"Represent this sentence for searching relevant passages: \")",
            [
                ("config.json", "094f8e891b932f2000c92cfc663bac4c62069f5d8af5b5278c4306aef3084750"),
                ("model.safetensors", "3c9f31665447c8911517620762200d2245a2518d6e7208acc78cd9db317e21ad"),
                ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                ("tokenizer_config.json", "9261e7d79b44c8195c1cada2b453e55b00aeb81e907a6664974b4d7776172ab3"),
                ("special_tokens_map.json", "b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3"),
                ("sentence_bert_config.json", null),
                ("modules.json", null),
                ("1_Pooling/config.json", null),
            ]),
    ];

    /// <summary>Tag of a text encoder downloaded from its hub repository.</summary>
    internal const string HubTag = "hub";

    /// <summary>The catalog's text encoders as <see cref="WeightKind.TextEncoder"/> tags ("all-MiniLM-L6-v2.hub"): their
    /// files download into one model folder of the weight cache.</summary>
    internal static IEnumerable<WeightTag> TextEncoderTags() => HubTextEncoders.Select(e => new WeightTag
    {
        Architecture = e.Model,
        Tag = HubTag,
        Kind = WeightKind.TextEncoder,
        Source = WeightSource.HuggingFace,
        SourceArchitecture = e.Repository,
        Files = e.Files.Select(f => new WeightFile($"https://huggingface.co/{e.Repository}/resolve/{e.Commit}/{f.Path}", f.Sha256, f.Path)).ToArray(),
        NumClasses = 0,
        FeaturesOnly = true,
        License = e.License,
        Recipe = e.Recipe,
    });
}
