using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Training;

/// <summary>
/// The model a workflow starts from: a zoo architecture (random or pretrained weights) or a saved model
/// file. Its <see cref="Model"/> is headless for zoo models (output = pooled features) and the full
/// classifier for a model file; either way <see cref="GraphModule.PooledFeatures"/> gives the features.
/// </summary>
public sealed class SourceModel : IDisposable
{
    private SourceModel(GraphModule model, ModelArchitecture architecture, Preprocessing preprocessing, string description, TrainedModel? trained)
    {
        Model = model;
        Architecture = architecture;
        Preprocessing = preprocessing;
        Description = description;
        Trained = trained;
    }

    /// <summary>The network.</summary>
    public GraphModule Model { get; }

    /// <summary>Its body's architecture (with the saved head for a model file, headless otherwise).</summary>
    public ModelArchitecture Architecture { get; }

    /// <summary>The eval transform of its weights.</summary>
    public Preprocessing Preprocessing { get; }

    /// <summary>"resnet50 (imagenet)", "resnet18 (random weights)", or the model file's path.</summary>
    public string Description { get; }

    /// <summary>The loaded model file, when the source is one.</summary>
    public TrainedModel? Trained { get; }

    /// <summary>True for names that mean "no pretrained weights".</summary>
    public static bool IsRandom(string? weights) => weights is null || weights.Trim().ToLowerInvariant() is "" or "none" or "random" or "scratch";

    /// <summary>
    /// Opens a model by name or path: a TransferSharp model file (<c>.safetensors</c> written by training), or a zoo
    /// name with <paramref name="weights"/> ("none"/null for random initialisation, "imagenet", a tag, or a
    /// weights file). <paramref name="imageSize"/> sets the input size (crop; the resize keeps the 0.875 ratio).
    /// </summary>
    public static SourceModel Open(string model, string? weights = null, int? imageSize = null, IProgress<ProgressInfo>? progress = null, CancellationToken cancellation = default)
    {
        if (string.IsNullOrWhiteSpace(model)) throw new ArgumentException("no model given: a zoo name (see `transfer models`) or a .safetensors model file");
        if (File.Exists(model) || model.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(model)) throw new FileNotFoundException($"{model}: no such model file", model);
            var trained = TrainedModel.Load(model);
            if (!IsRandom(weights)) { trained.Dispose(); throw new ArgumentException("--weights applies to zoo models; a model file carries its own weights"); }
            var pre = imageSize is { } s ? WithSize(trained.Preprocessing, s) : trained.Preprocessing;
            return new SourceModel(trained.Model, trained.Architecture, pre, model, trained);
        }
        var arch = new ModelArchitecture { Zoo = Vision.Zoo.ModelZoo.Get(model).Name, ImageSize = imageSize };
        var (graph, preprocessing, description) = WeightSources.Create(arch, weights, progress, cancellation);
        if (imageSize is { } size) preprocessing = WithSize(preprocessing, size);
        return new SourceModel(graph, arch, preprocessing, description, null);
    }

    /// <summary>Wraps a model already in memory (its architecture must describe it).</summary>
    public static SourceModel From(GraphModule model, ModelArchitecture architecture, Preprocessing preprocessing, string description) =>
        new(model, architecture, preprocessing, description, null);

    /// <summary>The same transform at another crop size (resize = crop / 0.875, torchvision's ratio).</summary>
    public static Preprocessing WithSize(Preprocessing p, int cropSize) =>
        p with { CropSize = cropSize, ResizeSize = (int)Math.Floor(cropSize / 0.875) };

    /// <inheritdoc />
    public void Dispose()
    {
        if (Trained is not null) Trained.Dispose();
        else Model.Dispose();
    }
}

/// <summary>
/// Where pretrained weights come from. The one place that talks to the Weights module, so changing how
/// weights are found touches nothing else.
/// </summary>
internal static class WeightSources
{
    public static (GraphModule Model, Preprocessing Preprocessing, string Description) Create(ModelArchitecture headless, string? weights,
        IProgress<ProgressInfo>? progress, CancellationToken cancellation)
    {
        var model = headless.Build();
        if (SourceModel.IsRandom(weights))
            return (model, Preprocessing.ImageNet, $"{headless.Zoo} (random weights)");
        model.Dispose();
        throw new NotSupportedException($"pretrained weights '{weights}' for {headless.Zoo}: this build has no weight loader yet; use --weights none");
    }
}
