using TransferSharp.Onnx;
using TransferSharp.Training;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;

namespace TransferSharp.Vision;

// The composition root of model loading: the one place that knows every kind of model source (zoo + weights, trained
// model files, ONNX files). The type itself (Model/VisionModel.cs) sits below Training; this file sits above every
// layer it dispatches to, so no layer registers itself with another.
public sealed partial class VisionModel
{
    /// <summary>
    /// Loads a model. <paramref name="model"/> is a zoo name or Keras alias, a trained model file (<c>.safetensors</c>
    /// written by <see cref="Save"/>) or an ONNX file. For zoo names, <paramref name="weights"/> is "imagenet"/"default"
    /// (also when null), a tag name, a checkpoint file, or "none"/"random" for fresh weights (seeded by LibTorch's
    /// generator); model files carry their own weights and ignore it. <see cref="ModelOptions.ImageSize"/> sets the input
    /// crop of every kind (the resize keeps the weights' crop ratio).
    /// </summary>
    public static VisionModel Load(string model, string? weights = null, ModelOptions? options = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (!ModelZoo.Contains(model) && (File.Exists(model) || Path.HasExtension(model) && model.IndexOfAny(['/', '\\', '.']) >= 0))
        {
            if (!File.Exists(model)) throw new FileNotFoundException($"no model file at {Path.GetFullPath(model)}", model);
            cancellation.ThrowIfCancellationRequested();
            VisionModel? loaded = null;
            // A .safetensors file is read as a model file: a plain weights file is refused with the way to load it.
            if (model.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) loaded = ModelFile.Read(model);
            else if (model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) loaded = LoadOnnx(model, options);
            if (loaded is null)
                throw new InvalidFileException(model, "not a model file TransferSharp can open (a trained .safetensors model or an .onnx file); "
                    + "to load a checkpoint into a zoo architecture, give the architecture's zoo name as the model and the file as its weights");
            if (options?.ImageSize is { } size) loaded.Preprocessing = loaded.Preprocessing.AtCropSize(size);
            return loaded;
        }
        var entry = ModelZoo.Get(model);
        var w = weights?.Trim();
        if (w?.ToLowerInvariant() is "none" or "random" or "scratch")
        {
            // Random weights come from a generator seeded with ModelOptions.Seed, so "random weights" means the same weights
            // on every run (and a resumed run starts from the body it was interrupted with).
            var fresh = ModelZoo.Create(entry.Name, options);
            return new VisionModel(fresh, Sized(DefaultPreprocessing(entry), options), [], $"{entry.Name} with random weights",
                architecture: ZooArchitecture(entry, fresh, options));
        }
        var (module, loadedWeights) = PretrainedWeights.Create(entry.Name, string.IsNullOrEmpty(w) ? "imagenet" : w, options, progress, cancellation);
        var source = loadedWeights.Tag?.Name ?? loadedWeights.FilePath;
        // A 1000-class checkpoint given as a file is, in practice, an ImageNet-1k classifier.
        var labels = loadedWeights.Labels.Count == 0 && module.NumClasses == 1000 && loadedWeights.Report.HeadLoaded ? ClassLabels.ImageNet1k : loadedWeights.Labels;
        return new VisionModel(module, Sized(loadedWeights.Preprocessing, options), labels, $"{entry.Name} with {source}", loadedWeights,
            ZooArchitecture(entry, module, options));
    }

    /// <summary>A zoo model's description: rebuilt by name with the class count and input it was built with.</summary>
    private static ModelArchitecture ZooArchitecture(ZooEntry entry, Vision.Graph.GraphModule module, ModelOptions? options) =>
        new() { Zoo = entry.Name, InChannels = module.Graph.InChannels, ImageSize = options?.ImageSize, NumClasses = module.NumClasses };

    private static Preprocessing.Preprocessing Sized(Preprocessing.Preprocessing p, ModelOptions? options) =>
        options?.ImageSize is { } size ? p.AtCropSize(size) : p;

    private static Preprocessing.Preprocessing DefaultPreprocessing(ZooEntry entry)
    {
        var tag = WeightRegistry.For(entry.Name).FirstOrDefault();
        if (tag is not null) return tag.Preprocessing;
        return Vision.Preprocessing.Preprocessing.ImageNet.AtCropSize(entry.NativeSize);
    }

    /// <summary>An ONNX file imported as a trainable graph, with the preprocessing and labels <see cref="OnnxExporter"/>
    /// recorded in it (ImageNet's defaults at the file's input size otherwise). A graph with a feature node is described
    /// by its own graph, so it trains like a zoo body and its trained model file stores the graph.</summary>
    private static VisionModel LoadOnnx(string path, ModelOptions? options)
    {
        var imported = OnnxImporter.Import(path);
        if (imported.Graph.InputType != TransferSharp.Vision.Graph.ElementType.Float32)
            throw new InvalidFileException(path, $"takes {imported.Graph.InputType} token inputs ({string.Join(", ", [imported.OnnxInput, .. imported.Graph.ExtraInputs.Select(i => i.Name)])}): it is a text encoder, not an image model; import it with OnnxImporter.Import (docs/text-transformers.md)");
        if (imported.Graph.InputShape.Length != 4)
            throw new InvalidFileException(path, $"takes inputs of shape [N, {string.Join(", ", imported.Graph.InputShape.Skip(1))}], not images [N, C, H, W]: it is not an image model; import it with OnnxImporter.Import and run its graph (docs/onnx.md)");
        var module = imported.CreateModule();
        var graph = module.Graph;
        var preprocessing = imported.Preprocessing ?? OnnxModelFile.DefaultPreprocessing(graph.InputShape[2]);
        var labels = imported.Labels;
        var architecture = graph.FeatureNode is null ? null : new ModelArchitecture
        {
            Zoo = "onnx:" + Path.GetFileName(path), Graph = graph, InChannels = graph.InChannels, ImageSize = options?.ImageSize,
            NumClasses = graph.ClassifierNode is { } c && c == graph.Output ? module.NumClasses : 0,
        };
        return new VisionModel(module, preprocessing, labels.Count == module.NumClasses ? labels : [],
            $"{Path.GetFileName(path)} (ONNX opset {imported.Opset}{(imported.Producer.Length > 0 ? ", " + imported.Producer : "")})", architecture: architecture);
    }
}
