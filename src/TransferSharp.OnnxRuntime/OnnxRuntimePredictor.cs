using TransferSharp.Vision;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Preprocessing;
using static TorchSharp.torch;

namespace TransferSharp.Onnx;

/// <summary>
/// Predicts and extracts features with ONNX Runtime instead of TorchSharp (the CLI's
/// <c>--engine onnxruntime</c>): the same image pipeline, outputs and top-k as
/// <see cref="Predictor"/>. Built from an .onnx file, or from any <see cref="VisionModel"/> (exported
/// to ONNX in memory).
/// </summary>
public sealed class OnnxRuntimePredictor : IDisposable
{
    private readonly OnnxRuntimeEngine _engine;

    /// <summary>Wraps an engine.</summary>
    public OnnxRuntimePredictor(OnnxRuntimeEngine engine, Preprocessing preprocessing, IReadOnlyList<string>? labels = null, int batchSize = 16)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), "must be at least 1");
        _engine = engine;
        Preprocessing = preprocessing;
        Labels = labels ?? [];
        BatchSize = batchSize;
    }

    /// <summary>Opens an .onnx file: preprocessing and labels from its metadata when TransferSharp wrote it,
    /// ImageNet's defaults at the file's input size otherwise.</summary>
    public static OnnxRuntimePredictor FromFile(string path, OnnxRuntimeOptions? options = null, int batchSize = 16)
    {
        var engine = new OnnxRuntimeEngine(path, options);
        var size = engine.InputShape.Length == 4 && engine.InputShape[2] > 0 ? engine.InputShape[2] : 224;
        return new OnnxRuntimePredictor(engine, engine.Preprocessing ?? OnnxModelFile.DefaultPreprocessing(size),
            OnnxExporter.ReadLabels(engine.Metadata, engine.Path), batchSize);
    }

    /// <summary>Exports a loaded model (in memory) and opens it in ONNX Runtime.</summary>
    public static OnnxRuntimePredictor FromModel(VisionModel model, OnnxRuntimeOptions? options = null, int batchSize = 16)
    {
        var proto = OnnxExporter.Build(model.Module, new OnnxExportOptions { Preprocessing = model.Preprocessing, Labels = model.Labels });
        return new OnnxRuntimePredictor(new OnnxRuntimeEngine(proto, $"{model.Description}, exported to ONNX in memory", options), model.Preprocessing, model.Labels, batchSize);
    }

    /// <summary>The eval transform applied to image files.</summary>
    public Preprocessing Preprocessing { get; }

    /// <summary>Class names (index → label).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Images per ONNX Runtime call.</summary>
    public int BatchSize { get; }

    /// <summary>The engine.</summary>
    public OnnxRuntimeEngine Engine => _engine;

    /// <summary>Model outputs for a preprocessed batch.</summary>
    public Tensor Forward(Tensor batch) => _engine.Forward(batch);

    /// <summary>Pooled features [N, F] for a preprocessed batch.</summary>
    public Tensor Features(Tensor batch) => _engine.PooledFeatures(batch);

    /// <summary>Top-k classes with softmax probabilities for image files, batched.</summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<string> imagePaths, int top = 5, CancellationToken cancellation = default)
    {
        Predictor.RequireClassifier(HasClassifier, _engine.Path);
        return Predictor.PredictFiles(imagePaths, BatchSize, Preprocessing, Labels, top, Forward, cancellation);
    }

    /// <summary>Whether the main output is class scores, as the file states it: a file TransferSharp wrote records its class
    /// count (0: features); any other file is imported and its graph says whether it has a classifier node (the rule
    /// <see cref="OnnxImporter"/> states it by), so both engines accept and refuse the same files. A file whose ops the
    /// importer does not translate cannot state one; ONNX Runtime runs it all the same, so it is taken to give class scores.</summary>
    public bool HasClassifier => _hasClassifier ??= DecideClassifier();

    private bool? _hasClassifier;

    private bool DecideClassifier()
    {
        if (OnnxExporter.StatedClasses(_engine.Metadata, _engine.OutputName) is { } stated) return stated != 0;
        if (!File.Exists(_engine.Path)) return true;
        try
        {
            return Predictor.HasClassifier(OnnxImporter.Import(_engine.Path).Graph);
        }
        catch (OnnxException)
        {
            return true;
        }
    }

    /// <summary>Pooled features [N, F] for image files, batched.</summary>
    public Tensor ExtractFeatures(IReadOnlyList<string> imagePaths, CancellationToken cancellation = default)
    {
        var parts = new List<Tensor>();
        try
        {
            for (int start = 0; start < imagePaths.Count; start += BatchSize)
            {
                cancellation.ThrowIfCancellationRequested();
                using var batch = ImageTransforms.LoadBatch(imagePaths.Skip(start).Take(BatchSize).ToArray(), Preprocessing);
                parts.Add(Features(batch));
            }
            return cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _engine.Dispose();
}
