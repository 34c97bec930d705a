using TransferSharp.Onnx;
using TransferSharp.Vision;
using TransferSharp.Vision.Inference;
using TransferSharp.Weights;
using static TorchSharp.torch;

namespace TransferSharp.Serving;

/// <summary>Where a served model's weights came from (<c>GET /v1/model</c>).</summary>
/// <param name="Tag">The weight tag ("resnet50.IMAGENET1K_V2"), when the weights came from one.</param>
/// <param name="File">The checkpoint or model file that was read.</param>
/// <param name="Source">The publisher of a tag (torchvision, timm, …).</param>
public sealed record WeightsProvenance(string? Tag, string? File, string? Source);

/// <summary>
/// What the endpoints serve: one model in one engine (TorchSharp's <see cref="Predictor"/> or
/// <see cref="OnnxRuntimePredictor"/>), seen through the two calls a server needs — class scores and pooled
/// features for a preprocessed batch — with the preprocessing, class names and provenance that belong to it.
/// Build it with <see cref="Load"/> or the <c>From…</c> methods; it owns and disposes what it wraps.
/// </summary>
public sealed class ServedModel : IDisposable
{
    private readonly Func<Tensor, Tensor> _forward;
    private readonly Func<Tensor, Tensor> _features;
    private readonly IDisposable _owned;

    private ServedModel(string name, string engine, Vision.Preprocessing.Preprocessing preprocessing, IReadOnlyList<string> labels,
        bool hasClassifier, WeightsProvenance? weights, Func<Tensor, Tensor> forward, Func<Tensor, Tensor> features, IDisposable owned)
    {
        Name = name;
        Engine = engine;
        Preprocessing = preprocessing;
        Labels = labels;
        HasClassifier = hasClassifier;
        Weights = weights;
        _forward = forward;
        _features = features;
        _owned = owned;
    }

    /// <summary>The model, for people ("resnet50 with resnet50.IMAGENET1K_V2").</summary>
    public string Name { get; }

    /// <summary>"torchsharp" or "onnxruntime".</summary>
    public string Engine { get; }

    /// <summary>The eval transform applied to every uploaded image.</summary>
    public Vision.Preprocessing.Preprocessing Preprocessing { get; }

    /// <summary>Class names (index → label).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Whether the model outputs class scores (false: its output is pooled features, so only
    /// <c>/v1/features</c> answers).</summary>
    public bool HasClassifier { get; }

    /// <summary>Where the weights came from, when known.</summary>
    public WeightsProvenance? Weights { get; }

    /// <summary>Class scores [N, classes] for a preprocessed batch [N, C, H, W].</summary>
    public Tensor Forward(Tensor batch) => _forward(batch);

    /// <summary>Pooled features [N, F] for a preprocessed batch [N, C, H, W].</summary>
    public Tensor Features(Tensor batch) => _features(batch);

    /// <summary>Serves a TorchSharp predictor (thread-safe, BN folded, channels-last); takes ownership of it.</summary>
    public static ServedModel FromPredictor(Predictor predictor, string name, WeightsProvenance? weights = null) =>
        new(name, "torchsharp", predictor.Preprocessing, predictor.Labels, Predictor.HasClassifier(predictor.Model.Graph), weights,
            predictor.Logits, b => predictor.Features(b), predictor);

    /// <summary>Serves a loaded model in TorchSharp (a predictor is built from it, by default with
    /// <see cref="ServingPredictorOptions"/>; the model may be disposed afterwards).</summary>
    public static ServedModel FromModel(VisionModel model, PredictorOptions? options = null) =>
        FromPredictor(model.CreatePredictor(options ?? ServingPredictorOptions()), model.Description, Provenance(model));

    /// <summary>Serves an ONNX Runtime predictor; takes ownership of it.</summary>
    public static ServedModel FromOnnxRuntime(OnnxRuntimePredictor predictor, string name, bool hasClassifier, WeightsProvenance? weights = null) =>
        new(name, "onnxruntime", predictor.Preprocessing, predictor.Labels, hasClassifier, weights, predictor.Forward, predictor.Features, predictor);

    /// <summary>
    /// Loads a model the way <c>transfer predict</c> does: <paramref name="model"/> is a zoo name or Keras alias (with
    /// <paramref name="weights"/>: a tag, a checkpoint file, "imagenet"), a model file saved by training, or an .onnx
    /// file; <paramref name="engine"/> is "torchsharp" or "onnxruntime" (anything not ONNX is exported to ONNX in memory).
    /// </summary>
    public static ServedModel Load(string model, string? weights = null, string engine = "torchsharp", string device = "cpu", int threads = 0,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (engine is "onnxruntime")
        {
            var ortOptions = new OnnxRuntimeOptions { Threads = threads };
            if (model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) && File.Exists(model))
            {
                var ort = OnnxRuntimePredictor.FromFile(model, ortOptions);
                return FromOnnxRuntime(ort, Path.GetFileName(model) + " in ONNX Runtime", ort.HasClassifier, new WeightsProvenance(null, Path.GetFullPath(model), null));
            }
            using var loaded = VisionModel.Load(model, weights, progress: progress, cancellation: cancellation);
            return FromOnnxRuntime(OnnxRuntimePredictor.FromModel(loaded, ortOptions), loaded.Description + " in ONNX Runtime",
                Predictor.HasClassifier(loaded.Module.Graph), Provenance(loaded, model));
        }
        if (engine is not ("torchsharp" or "torch")) throw new ArgumentException($"unknown engine '{engine}': torchsharp or onnxruntime", nameof(engine));
        using var vision = VisionModel.Load(model, weights, progress: progress, cancellation: cancellation);
        return FromPredictor(vision.CreatePredictor(ServingPredictorOptions(device)), vision.Description, Provenance(vision, model));
    }

    /// <summary>How the server's TorchSharp predictor runs: channels-last where oneDNN is kept off the AVX-512 kernels
    /// of the platform fault (the `transfer` command and the test host ask for that; so should an app that serves), where
    /// it measured faster under concurrent load (docs/benchmarks.md, "Serving"); the predictor still uses it only when a
    /// probe batch shows it computes what NCHW does.</summary>
    public static PredictorOptions ServingPredictorOptions(string device = "cpu") =>
        new() { Device = device, ChannelsLast = !Runtime.TorchRuntime.Avx512KernelFaultExposed };

    // A zoo model knows its tag or checkpoint; a model file (trained, ONNX) is its own provenance.
    private static WeightsProvenance? Provenance(VisionModel m, string? modelArgument = null) =>
        m.Weights is { } w ? new WeightsProvenance(w.Tag?.Name, w.FilePath, w.Tag?.Source.ToString())
        : modelArgument is not null && File.Exists(modelArgument) ? new WeightsProvenance(null, Path.GetFullPath(modelArgument), "model file")
        : null;

    /// <inheritdoc />
    public void Dispose() => _owned.Dispose();
}
