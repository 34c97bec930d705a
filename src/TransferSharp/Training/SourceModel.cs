using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using TorchSharp;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Training;

/// <summary>
/// The model a workflow starts from: a zoo architecture (random or pretrained weights) or a saved model
/// file. Its <see cref="Model"/> is headless for zoo models (output = pooled features) and the full
/// classifier for a model file; either way <see cref="GraphModule.PooledFeatures"/> gives the features.
/// </summary>
public sealed class SourceModel : IDisposable
{
    private SourceModel(GraphModule model, ModelArchitecture? architecture, Preprocessing preprocessing, string description, TrainedModel? trained)
    {
        Model = model;
        Architecture = architecture;
        Preprocessing = preprocessing;
        Description = description;
        Trained = trained;
    }

    /// <summary>The network.</summary>
    public GraphModule Model { get; }

    /// <summary>Its body's architecture (with the saved head for a model file, headless otherwise; an imported ONNX
    /// graph is carried whole); null for a graph without a feature node, which extracts features but cannot be trained.</summary>
    public ModelArchitecture? Architecture { get; }

    /// <summary>The eval transform of its weights.</summary>
    public Preprocessing Preprocessing { get; }

    /// <summary>"resnet50 (imagenet)", "resnet18 (random weights)", or the model file's path.</summary>
    public string Description { get; }

    /// <summary>The loaded model file, when the source is one.</summary>
    public TrainedModel? Trained { get; }

    /// <summary>True for names that mean "no pretrained weights".</summary>
    public static bool IsRandom(string? weights) => weights is null || weights.Trim().ToLowerInvariant() is "" or "none" or "random" or "scratch";

    /// <summary>
    /// Opens a model by name or path: a TransferSharp model file (<c>.safetensors</c> written by training), another
    /// model file <see cref="VisionModel"/> opens (an ONNX network: its graph is stored in the trained model file), or a zoo
    /// name with <paramref name="weights"/> ("imagenet"/null, a tag, a weights file, or "none" for random
    /// initialisation, seeded with <paramref name="randomSeed"/>). <paramref name="imageSize"/> sets the input crop
    /// (the resize keeps the 0.875 ratio).
    /// </summary>
    public static SourceModel Open(string model, string? weights = null, int? imageSize = null, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellation = default, int randomSeed = 0)
    {
        if (string.IsNullOrWhiteSpace(model)) throw new ArgumentException("no model given: a zoo name (see `transfer models`) or a model file");
        if (!Vision.Zoo.ModelZoo.Contains(model))
        {
            if (TrainedModel.IsModelFile(model))
            {
                var trained = TrainedModel.Load(model);
                var pre = imageSize is { } s ? trained.Preprocessing.AtCropSize(s) : trained.Preprocessing;
                return new SourceModel(trained.Model, trained.Architecture, pre, model, trained);
            }
            if (File.Exists(model))
            {
                var other = VisionModel.Load(model, null, null, progress, cancellation);
                var pre = imageSize is { } s ? other.Preprocessing.AtCropSize(s) : other.Preprocessing;
                // An imported graph with a feature node trains like a zoo body: its graph is stored in the model file.
                if (other.Module.Graph.FeatureNode is null)
                    return new SourceModel(other.Module, null, pre, other.Description, null);
                using (other)
                {
                    var imported = new ModelArchitecture { Zoo = "onnx:" + Path.GetFileName(model), Graph = other.Module.Graph, InChannels = other.Module.Graph.InChannels, ImageSize = imageSize };
                    var body = imported.Build();
                    body.CopyMatchingFrom(other.Module);
                    return new SourceModel(body, imported, pre, other.Description, null);
                }
            }
        }
        var entry = Vision.Zoo.ModelZoo.Get(model);
        var arch = new ModelArchitecture { Zoo = entry.Name, ImageSize = imageSize };
        // Random weights are seeded, so "random weights" means the same weights on every run (and a resumed run
        // starts from the body it was interrupted with).
        if (IsRandom(weights)) torch.manual_seed(randomSeed);
        using var loaded = VisionModel.Load(entry.Name, IsRandom(weights) ? "none" : weights, null, progress, cancellation);
        var headless = arch.Build();
        headless.CopyMatchingFrom(loaded.Module);
        var preprocessing = imageSize is { } size ? loaded.Preprocessing.AtCropSize(size) : loaded.Preprocessing;
        return new SourceModel(headless, arch, preprocessing, loaded.Description, null);
    }

    /// <summary>Wraps a model already in memory (its architecture must describe it). The caller keeps
    /// ownership: disposing the source does not dispose <paramref name="model"/>.</summary>
    public static SourceModel From(GraphModule model, ModelArchitecture architecture, Preprocessing preprocessing, string description) =>
        new(model, architecture, preprocessing, description, null) { _ownsModel = false };

    private bool _ownsModel = true;

    /// <inheritdoc />
    public void Dispose()
    {
        if (Trained is not null) Trained.Dispose();
        else if (_ownsModel) Model.Dispose();
    }
}
