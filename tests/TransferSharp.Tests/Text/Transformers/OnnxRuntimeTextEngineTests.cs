using Microsoft.ML.OnnxRuntime;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>
/// <see cref="TextEncoder.Encode"/> on ONNX Runtime (<see cref="OnnxRuntimeEngine.ForTextEncoder"/>: the encoder's graph
/// exported in memory) gives the TorchSharp graph's embeddings (cosine ≥ 0.99999 per text) and the package's
/// SentenceEncoder's, for the bundled all-MiniLM-L6-v2 (the BERT family loaded from a folder), the package's ONNX file
/// imported as a graph, and a tiny random BERT; the exported BERT graph is fused by ONNX Runtime as the package's file is.
/// </summary>
[Trait("Category", "Parity")]
public sealed class OnnxRuntimeTextEngineTests(BundledMiniLmFolder bundled, ITestOutputHelper output) : IClassFixture<BundledMiniLmFolder>, IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Encodes with the TorchSharp graph, then with ONNX Runtime on the same encoder, and compares per text.</summary>
    private float[][] AssertEnginesAgree(TextEncoder encoder, string[] texts)
    {
        var torch = encoder.Encode(texts, batchSize: 2);
        encoder.UseEngine(OnnxRuntimeEngine.ForTextEncoder(encoder, new OnnxRuntimeOptions { Threads = 2 }));
        Assert.Equal("onnxruntime", encoder.Engine!.EngineName);
        var truncated = new List<int>();
        var ort = encoder.Encode(texts, batchSize: 2, truncated: truncated);
        for (int i = 0; i < texts.Length; i++)
        {
            double dot = 0, a = 0, b = 0;
            for (int k = 0; k < encoder.Dimension; k++) { dot += ort[i][k] * torch[i][k]; a += ort[i][k] * ort[i][k]; b += torch[i][k] * torch[i][k]; }
            double cosine = dot / Math.Sqrt(a * b);
            double norm = Math.Sqrt(a / b);
            output.WriteLine($"{texts[i],-60} ORT vs TorchSharp cosine {cosine:F8}, norm ratio {norm:F6}");
            Assert.True(cosine >= 0.99999, $"text {i}: cosine {cosine}");
            Assert.InRange(norm, 0.9999, 1.0001);
        }
        encoder.UseEngine(null);
        Assert.Null(encoder.Engine);
        return ort;
    }

    [Fact]
    public void Bundled_minilm_on_onnx_runtime_equals_the_torchsharp_graph_and_the_packages_sentence_encoder()
    {
        using var encoder = TextEncoder.Load(bundled.Folder);
        var ort = AssertEnginesAgree(encoder, TextEncoderTests.Sentences);
        TextEncoderTests.AssertEqualsSentenceEncoder(ort, TextEncoderTests.Sentences, output);
    }

    [Fact]
    public void Imported_onnx_encoder_on_onnx_runtime_equals_the_torchsharp_graph_and_the_packages_sentence_encoder()
    {
        using var encoder = TextEncoder.Load(EncoderFolders.MiniLm(_dir));
        var ort = AssertEnginesAgree(encoder, TextEncoderTests.Sentences);
        TextEncoderTests.AssertEqualsSentenceEncoder(ort, TextEncoderTests.Sentences, output);
    }

    [Fact]
    public void Bert_folder_on_onnx_runtime_equals_the_torchsharp_graph()
    {
        string[] words = ["the", "cook", "bakes", "bread", "and", "a", "computer", "runs", "code"];
        using var encoder = TextEncoder.Load(EncoderFolders.TinyBert(Path.Combine(_dir, "tiny"), words));
        // Lengths 3 to 102 tokens, padded in batches of two.
        string[] texts = ["the cook bakes bread", "a computer runs code and the cook bakes", "bread", string.Join(' ', Enumerable.Repeat("code", 100))];
        AssertEnginesAgree(encoder, texts);
    }

    [Fact]
    public void A_folder_without_tokenizer_settings_cuts_texts_at_the_models_position_limit()
    {
        // The tiny BERT has 128 position embeddings and no tokenizer_config.json (whose default limit is 512).
        using var encoder = TextEncoder.Load(EncoderFolders.TinyBert(Path.Combine(_dir, "limit"), ["code"]));
        Assert.Equal(128, encoder.Tokenizer.Settings.MaxLength);
        var truncated = new List<int>();
        var vectors = encoder.Encode(["code", string.Join(' ', Enumerable.Repeat("code", 300))], truncated: truncated);
        Assert.Equal([1], truncated);
        Assert.All(vectors, v => Assert.All(v, x => Assert.True(float.IsFinite(x))));
    }

    [Fact]
    public void Exported_bert_graph_is_fused_by_onnx_runtime_as_the_packages_file_is()
    {
        using var encoder = TextEncoder.Load(bundled.Folder);
        var bytes = OnnxExporter.ExportToBytes(encoder.Module, new OnnxExportOptions { InputName = "input_ids", OutputName = "last_hidden_state", IncludeFeatures = false });
        var exported = global::Onnx.ModelProto.Parser.ParseFrom(bytes);
        // q, k and v are read from their projections: no concatenation to slice apart again.
        Assert.DoesNotContain(exported.Graph.Node, n => n.OpType is "Concat" or "Slice" && n.Name.Contains("attention", StringComparison.Ordinal));
        var optimized = Path.Combine(_dir, "optimized.onnx");
        using (new InferenceSession(bytes, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })) { }
        var ops = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", ops.OrderByDescending(o => o.Value).Select(o => $"{o.Key}×{o.Value}")));
        // Six layers: GELU with its bias as one kernel, the transposed key and the 1/√d scale folded into the score product.
        Assert.Equal(6, ops.GetValueOrDefault("BiasGelu"));
        Assert.Equal(6, ops.GetValueOrDefault("FusedMatMul"));
        Assert.False(ops.ContainsKey("Erf"), "GELU left unfused");
        Assert.False(ops.ContainsKey("Div"), "attention scale or GELU division left unfused");
    }

    [Fact]
    public void Engine_refuses_inputs_the_model_does_not_have_by_name()
    {
        using var encoder = TextEncoder.Load(bundled.Folder);
        using var engine = OnnxRuntimeEngine.ForTextEncoder(encoder);
        Assert.Equal(["input_ids", Bert.AttentionMask, Bert.TokenTypeIds], engine.InputNames);
        using var ids = zeros(1, 3, dtype: ScalarType.Int64);
        var e = Assert.Throws<TransferSharpException>(() => engine.Run(new Dictionary<string, Tensor> { ["input_ids"] = ids, ["mask"] = ids }, OnnxRuntimeEngine.LastHiddenStateOutput));
        Assert.Contains("not fed: attention_mask, token_type_ids", e.Message);
        Assert.Contains("not inputs of the model: mask", e.Message);
        Assert.Contains(encoder.Name, e.Message);
        var single = Assert.Throws<TransferSharpException>(() => engine.Forward(ids));
        Assert.Contains("3 inputs", single.Message);
    }
}
