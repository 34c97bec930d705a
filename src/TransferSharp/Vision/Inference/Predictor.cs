using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Inference;

/// <summary>One class and its probability.</summary>
public sealed record ClassScore(int Index, string Label, double Probability);

/// <summary>The top classes for one image.</summary>
public sealed record Prediction(string Source, IReadOnlyList<ClassScore> Top);

/// <summary>How a <see cref="Predictor"/> runs.</summary>
public sealed record PredictorOptions
{
    /// <summary>Device ("cpu", "cuda", "cuda:N", "auto").</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Images per forward pass.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Fold BatchNorm into convolutions (exact up to rounding; faster).</summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>Channels-last memory layout: up to a third faster with oneDNN on CPUs where its kernels are right, but
    /// wrong or crashing on some (LibTorch 2.10 on an AMD EPYC with AVX-512 VP2INTERSECT/BF16), so off unless asked for.
    /// When on, it is used only where a probe shows it computes what NCHW does (<see cref="InferenceOptimizer.TryChannelsLast"/>).</summary>
    public bool ChannelsLast { get; init; }
}

/// <summary>
/// A reusable, thread-safe inference object: built once from a model (folded and laid out for
/// speed, in eval mode, no gradients), then called for any number of images from any thread.
/// Nothing is reloaded per call; every tensor of a call is freed when the call returns.
/// </summary>
public sealed class Predictor : IDisposable
{
    private readonly GraphModule _model;
    private readonly ModelGraph _sourceGraph;
    private readonly Device _device;
    private readonly bool _channelsLast;

    /// <summary>Builds the predictor (the source model is not modified and may be disposed afterwards).</summary>
    public Predictor(GraphModule model, Preprocessing.Preprocessing preprocessing, IReadOnlyList<string>? labels = null, PredictorOptions? options = null)
    {
        Options = options ?? new PredictorOptions();
        Preprocessing = preprocessing;
        Labels = labels ?? [];
        _device = Runtime.TorchRuntime.ParseDevice(Options.Device);
        _sourceGraph = model.Graph;
        _model = Options.FoldBatchNorm ? InferenceOptimizer.FoldBatchNorm(model) : StateLoader.Clone(model);
        _model.to(_device); // also when the source model lives elsewhere (a model trained on a GPU, predicting on the CPU)
        _model.eval();
        _channelsLast = Options.ChannelsLast && _device.type == DeviceType.CPU && InferenceOptimizer.TryChannelsLast(_model);
        foreach (var p in _model.parameters()) p.requires_grad = false;
    }

    /// <summary>True when it runs channels-last (asked for, on the CPU, and verified exact on this machine).</summary>
    public bool UsesChannelsLast => _channelsLast;

    /// <summary>The options it was built with.</summary>
    public PredictorOptions Options { get; }

    /// <summary>The eval transform applied to image files.</summary>
    public Preprocessing.Preprocessing Preprocessing { get; }

    /// <summary>Class names (index → label); "class N" where none is known.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The optimised model it runs.</summary>
    public GraphModule Model => _model;

    /// <summary>Model outputs for a preprocessed batch [N, C, H, W] (CPU tensor; result on CPU).</summary>
    public Tensor Forward(Tensor batch) => Run(batch, m => m.forward);

    /// <summary>Pooled features [N, F] for a preprocessed batch.</summary>
    public Tensor Features(Tensor batch, PoolKind pool = PoolKind.Avg) => Run(batch, m => x => m.PooledFeatures(x, pool));

    /// <summary>Pre-logits [N, F] (the classifier's input, <see cref="ModelGraph.PreLogitsNode"/>) for a preprocessed batch.</summary>
    public Tensor PreLogits(Tensor batch) => Run(batch, m => x => m.Run(x, m.Graph.PreLogitsNode)[0]);

    private Tensor Run(Tensor batch, Func<GraphModule, Func<Tensor, Tensor>> f)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = Runtime.TorchRuntime.IsOn(batch, _device) ? batch : batch.to(_device);
        if (_channelsLast) x = InferenceOptimizer.ChannelsLast(x);
        var y = f(_model)(x);
        if (y.device.type != DeviceType.CPU) y = y.cpu();
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Class scores [N, K] for a preprocessed batch: the output of the graph's classifier node (the model's
    /// output too, unless an imported file ends its classifier in a softmax or a flatten, which are left out here).</summary>
    public Tensor Logits(Tensor batch)
    {
        RequireClassifier(HasClassifier(_sourceGraph), _sourceGraph.Name);
        return Run(batch, m => x => m.Run(x, m.Graph.ClassifierNode!)[0]);
    }

    /// <summary>Top-k classes with softmax probabilities for image files, batched.</summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<string> imagePaths, int top = 5, CancellationToken cancellation = default)
    {
        RequireClassifier(HasClassifier(_sourceGraph), _sourceGraph.Name);
        return PredictFiles(imagePaths, Options.BatchSize, Preprocessing, Labels, top, Logits, cancellation);
    }

    /// <summary>Whether the graph scores classes: it states a classifier node (the zoo, the head builder and the ONNX
    /// importer state it; nothing is inferred from what the output looks like).</summary>
    internal static bool HasClassifier(ModelGraph graph) => graph.ClassifierNode is not null;

    /// <summary>The one guard of both predictors: refuses to rank classes of a model that has no classifier.</summary>
    internal static void RequireClassifier(bool hasClassifier, string description)
    {
        if (!hasClassifier)
            throw new TransferSharpException($"{description} has no classifier: its output is features, not class scores. Train a head on it first (or extract features).");
    }

    /// <summary>Decodes image files in batches, runs <paramref name="forward"/> and labels the top-k classes (shared
    /// with the ONNX Runtime predictor).</summary>
    internal static IReadOnlyList<Prediction> PredictFiles(IReadOnlyList<string> imagePaths, int batchSize, Preprocessing.Preprocessing preprocessing,
        IReadOnlyList<string> labels, int top, Func<Tensor, Tensor> forward, CancellationToken cancellation)
    {
        var results = new List<Prediction>(imagePaths.Count);
        for (int start = 0; start < imagePaths.Count; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = imagePaths.Skip(start).Take(batchSize).ToArray();
            using var batch = ImageTransforms.LoadBatch(chunk, preprocessing);
            using var logits = forward(batch);
            results.AddRange(TopK(logits, chunk, top, labels));
        }
        return results;
    }

    /// <summary>Top-k classes for logits [N, classes].</summary>
    public IReadOnlyList<Prediction> TopK(Tensor logits, IReadOnlyList<string> sources, int top) => TopK(logits, sources, top, Labels);

    /// <summary>Top-k classes for logits [N, classes], labelled from <paramref name="labels"/> (shared with
    /// the ONNX Runtime predictor).</summary>
    internal static IReadOnlyList<Prediction> TopK(Tensor logits, IReadOnlyList<string> sources, int top, IReadOnlyList<string> labels)
    {
        if (logits.dim() != 2) throw new TransferSharpException($"the model outputs shape [{string.Join(",", logits.shape)}], not class scores; it has no classifier (train a head first)");
        using var probs = logits.softmax(1);
        int k = (int)Math.Min(top, probs.shape[1]);
        var (values, indices) = probs.topk(k, 1);
        using (values)
        using (indices)
        {
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            var list = new List<Prediction>();
            for (int i = 0; i < sources.Count; i++)
            {
                var scores = Enumerable.Range(0, k).Select(j =>
                {
                    int c = (int)ix[i * k + j];
                    return new ClassScore(c, c < labels.Count ? labels[c] : $"class {c}", v[i * k + j]);
                }).ToArray();
                list.Add(new Prediction(sources[i], scores));
            }
            return list;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _model.Dispose();
}
