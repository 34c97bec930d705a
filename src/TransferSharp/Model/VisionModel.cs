using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Weights;

namespace TransferSharp.Vision;

/// <summary>
/// The one model type: the graph with its weights (<see cref="Module"/>), the preprocessing that belongs to those
/// weights, the class names, how to rebuild it (<see cref="Architecture"/>), where its weights came from and, once
/// trained, what training did. Every loader returns one (<see cref="Load"/>: a zoo name with a weight tag or checkpoint,
/// an ONNX file, a trained model file); training changes one in place (<see cref="Trainer"/>); <see cref="Save"/>
/// writes it as a model file that <see cref="Load"/> opens again.
/// </summary>
public sealed partial class VisionModel : IDisposable
{
    private bool _disposed;

    /// <summary>Wraps parts that belong together. <paramref name="architecture"/> must describe <paramref name="module"/>'s
    /// graph (null: the model can predict and extract, not be trained or saved).</summary>
    public VisionModel(GraphModule module, Preprocessing.Preprocessing preprocessing, IReadOnlyList<string> labels, string description,
        LoadedWeights? weights = null, ModelArchitecture? architecture = null, TrainingRecord? training = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(preprocessing);
        Module = module;
        Preprocessing = preprocessing;
        Labels = labels;
        Description = description;
        Weights = weights;
        Architecture = architecture;
        Training = training;
    }

    /// <summary>The network.</summary>
    public GraphModule Module { get; }

    /// <summary>The eval transform its weights expect.</summary>
    public Preprocessing.Preprocessing Preprocessing { get; internal set; }

    /// <summary>Class names of its outputs, in output order (empty when unknown or headless).</summary>
    public IReadOnlyList<string> Labels { get; internal set; }

    /// <summary>Where it came from, for people ("resnet50 with resnet50.IMAGENET1K_V2", a model file's path).</summary>
    public string Description { get; internal set; }

    /// <summary>What was loaded, when the weights came from a tag or checkpoint.</summary>
    public LoadedWeights? Weights { get; }

    /// <summary>How to rebuild the graph (zoo name or stored graph, input, head, classes); null for a graph that cannot
    /// be rebuilt from a description (an imported network without a feature node).</summary>
    public ModelArchitecture? Architecture { get; internal set; }

    /// <summary>What training did (settings, data, curves); null for a model that was not trained by TransferSharp.</summary>
    public TrainingRecord? Training { get; internal set; }

    /// <summary>Number of classes of its classifier (0 when headless).</summary>
    public int NumClasses => Module.NumClasses;

    /// <summary>A reusable, thread-safe predictor for this model (BatchNorm folded, channels-last; an optimised copy:
    /// this model stays as is).</summary>
    public Predictor CreatePredictor(PredictorOptions? options = null) => new(Module, Preprocessing, Labels, options);

    /// <summary>Writes the model file: one <c>.safetensors</c> with the weights under the reference's names and, in its
    /// metadata, the architecture, class names, preprocessing and training record. Written to a temporary name and
    /// renamed, so the path holds the old file or the new one, never a part.</summary>
    /// <exception cref="TransferSharpException">The model has no <see cref="Architecture"/> or no class names for its classifier.</exception>
    public void Save(string path) => ModelFile.Write(path, this);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Module.Dispose();
    }
}
