using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;

namespace TransferSharp.Vision;

/// <summary>
/// A vision model ready to use: the graph with its weights, the preprocessing that belongs to those
/// weights, and the class names. Load it by zoo name (with "imagenet", a tag, or a checkpoint file as
/// weights) or from a model file (a trained TransferSharp model, an ONNX file).
/// </summary>
public sealed class VisionModel : IDisposable
{
    /// <summary>Opens model files that are not checkpoints of a zoo architecture (trained models, ONNX).
    /// Each returns null when the file is not its kind.</summary>
    internal static readonly List<Func<string, ModelOptions?, CancellationToken, VisionModel?>> FileLoaders = [Onnx.OnnxVisionModels.TryLoad];

    /// <summary>Wraps parts that belong together.</summary>
    public VisionModel(GraphModule module, Preprocessing.Preprocessing preprocessing, IReadOnlyList<string> labels, string description, LoadedWeights? weights = null)
    {
        Module = module;
        Preprocessing = preprocessing;
        Labels = labels;
        Description = description;
        Weights = weights;
    }

    /// <summary>The model.</summary>
    public GraphModule Module { get; }

    /// <summary>The eval transform its weights expect.</summary>
    public Preprocessing.Preprocessing Preprocessing { get; }

    /// <summary>Class names of its outputs (empty when unknown or headless).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Where it came from, for people ("resnet50 with resnet50.IMAGENET1K_V2").</summary>
    public string Description { get; }

    /// <summary>What was loaded, when the weights came from a tag or checkpoint.</summary>
    public LoadedWeights? Weights { get; }

    /// <summary>
    /// Loads a model. <paramref name="model"/> is a zoo name or Keras alias, or a model file.
    /// For zoo names, <paramref name="weights"/> is "imagenet"/"default" (also when null), a tag name,
    /// a checkpoint file, or "none"/"random" for fresh weights.
    /// </summary>
    public static VisionModel Load(string model, string? weights = null, ModelOptions? options = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (!ModelZoo.Contains(model) && (File.Exists(model) || Path.HasExtension(model) && model.IndexOfAny(['/', '\\', '.']) >= 0))
        {
            if (!File.Exists(model)) throw new FileNotFoundException($"no model file at {Path.GetFullPath(model)}", model);
            foreach (var loader in FileLoaders)
            {
                if (loader(model, options, cancellation) is { } loaded) return loaded;
            }
            throw new InvalidFileException(model, "not a model file TransferSharp can open (a trained .safetensors model or an .onnx file); "
                + "to load a checkpoint into a zoo architecture, give the architecture's zoo name as the model and the file as its weights");
        }
        var entry = ModelZoo.Get(model);
        var w = weights?.Trim();
        if (w is "none" or "random")
        {
            var fresh = ModelZoo.Create(entry.Name, options);
            return new VisionModel(fresh, DefaultPreprocessing(entry), [], $"{entry.Name} with random weights");
        }
        var (module, loadedWeights) = PretrainedWeights.Create(entry.Name, string.IsNullOrEmpty(w) ? "imagenet" : w, options, progress, cancellation);
        var source = loadedWeights.Tag?.Name ?? loadedWeights.FilePath;
        // A 1000-class checkpoint given as a file is, in practice, an ImageNet-1k classifier.
        var labels = loadedWeights.Labels.Count == 0 && module.NumClasses == 1000 && loadedWeights.Report.HeadLoaded ? ClassLabels.ImageNet1k : loadedWeights.Labels;
        return new VisionModel(module, loadedWeights.Preprocessing, labels, $"{entry.Name} with {source}", loadedWeights);
    }

    private static Preprocessing.Preprocessing DefaultPreprocessing(ZooEntry entry)
    {
        var tag = WeightRegistry.For(entry.Name).FirstOrDefault();
        if (tag is not null) return tag.Preprocessing;
        return Vision.Preprocessing.Preprocessing.ImageNet.AtCropSize(entry.NativeSize);
    }

    /// <summary>A reusable, thread-safe predictor for this model (optimised copy; this model stays as is).</summary>
    public Predictor CreatePredictor(PredictorOptions? options = null) => new(Module, Preprocessing, Labels, options);

    /// <inheritdoc />
    public void Dispose() => Module.Dispose();
}
