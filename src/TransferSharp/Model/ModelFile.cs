using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>A model file or checkpoint cannot be used: not ours, corrupt, or for another architecture.</summary>
public sealed class ModelFileException(string path, string reason, Exception? inner = null) : InvalidFileException(path, reason, inner);

/// <summary>The JSON style of everything stored in model-file metadata.</summary>
internal static class TrainingJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        IncludeFields = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase), new GraphJson.Converter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Deserialize<T>(string path, string key, string json)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options) ?? throw new JsonException("null");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException or ArgumentException or GraphException)
        {
            // InvalidOperationException: a string escape that is not valid Unicode; GraphException: a stored graph that
            // is not valid; the others: values a type refuses.
            throw new ModelFileException(path, $"metadata '{key}' is not valid: {e.Message}", e);
        }
    }
}

/// <summary>
/// The model file: a <see cref="Vision.VisionModel"/> as one <c>.safetensors</c> file with the weights under the
/// reference's state-dict names and, in the metadata, the architecture (to rebuild the graph), the class names, the eval
/// preprocessing and what training did. Reading needs nothing else; the file also opens with Python's <c>safetensors</c>.
/// </summary>
internal static class ModelFile
{
    /// <summary>Metadata key marking a TransferSharp file (model files and training checkpoints), with its format version.</summary>
    public const string FormatKey = "transfersharp";

    /// <summary>Value of <see cref="FormatKey"/> for model files: <c>model/2</c>, the reference model's own names.
    /// Files of <c>model/1</c> (a headless body and <c>head.*</c> tensors) still load.</summary>
    public const string FormatValue = "model/2";

    private const string Format1 = "model/1";

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> (atomically: temporary name, then rename).</summary>
    public static void Write(string path, Vision.VisionModel model)
    {
        var arch = model.Architecture ?? throw new TransferSharpException(
            $"{model.Description}: its architecture is unknown (a graph that cannot be rebuilt from a description), so a model file could not be loaded again");
        if (arch.NumClasses != model.Labels.Count)
            throw new TransferSharpException($"{model.Description}: the classifier has {arch.NumClasses} classes but {model.Labels.Count} class names are known; a model file needs a name per class");
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [FormatKey] = FormatValue,
            ["architecture"] = TrainingJson.Serialize(arch),
            ["class_names"] = TrainingJson.Serialize(model.Labels),
            ["preprocessing"] = TrainingJson.Serialize(model.Preprocessing),
        };
        if (model.Training is not null) metadata["training"] = TrainingJson.Serialize(model.Training);
        TensorFile.Write(path, model.Module.state_dict().Select(kv => (kv.Key, kv.Value)).ToList(), metadata);
    }

    /// <summary>True when the file is a TransferSharp model file (reads only the header). A <c>.safetensors</c> file
    /// whose header cannot be read is not taken for something else: its <see cref="InvalidFileException"/> (naming the
    /// file and the fault) is thrown.</summary>
    public static bool IsModelFile(string path)
    {
        if (!File.Exists(path) || !path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return false;
        return TensorFile.ReadMetadata(path).TryGetValue(FormatKey, out var v) && v is FormatValue or Format1;
    }

    /// <summary>
    /// Reads a model file: rebuilds the graph from the metadata and fills every tensor, checking names and shapes (a
    /// file whose tensors do not fit its architecture is an error naming the first mismatches, never a half-loaded model).
    /// </summary>
    public static Vision.VisionModel Read(string path)
    {
        var (tensors, metadata) = TensorFile.Read(path);
        try
        {
            if (!metadata.TryGetValue(FormatKey, out var format))
                throw new ModelFileException(path, "not a TransferSharp model file (its metadata has no architecture); a plain weights file is loaded as the weights of a zoo architecture");
            if (format is not (FormatValue or Format1))
                throw new ModelFileException(path, $"model file format '{format}' is not supported (this version reads {FormatValue} and {Format1}); a newer TransferSharp wrote it");
            string Meta(string key) => metadata.TryGetValue(key, out var v) ? v : throw new ModelFileException(path, $"metadata '{key}' is missing");
            var arch = TrainingJson.Deserialize<ModelArchitecture>(path, "architecture", Meta("architecture"));
            var classes = TrainingJson.Deserialize<string[]>(path, "class_names", Meta("class_names"));
            var pre = TrainingJson.Deserialize<Preprocessing>(path, "preprocessing", Meta("preprocessing"));
            var training = metadata.TryGetValue("training", out var t) ? TrainingJson.Deserialize<TrainingRecord>(path, "training", t) : null;
            Func<string, string> rename = name => name;
            if (format == Format1)
            {
                try
                {
                    (arch, rename) = ModelArchitecture.FromFormat1(arch);
                }
                catch (Exception e) when (e is GraphException or UnknownModelException or InvalidOptionException)
                {
                    throw new ModelFileException(path, $"cannot rebuild architecture '{arch.Zoo}': {e.Message}", e);
                }
            }
            if (classes.Length != arch.NumClasses)
                throw new ModelFileException(path, $"the architecture has {arch.NumClasses} classes but the file lists {classes.Length} class names");
            // A stored graph is data from the file: refuse one that would allocate far more than the file holds.
            if (arch.Graph is { } stored)
            {
                long elements = GraphJson.ParameterElements(stored), fileBytes = new FileInfo(path).Length;
                if (elements > fileBytes)
                    throw new ModelFileException(path, $"its graph describes {elements:N0} weights but the file has only {fileBytes:N0} bytes: corrupt or hostile");
            }
            GraphModule model;
            try
            {
                model = arch.Build();
            }
            catch (Exception e) when (e is ArgumentException or GraphException or UnknownModelException or InvalidOptionException)
            {
                throw new ModelFileException(path, $"cannot rebuild architecture '{arch.Zoo}': {e.Message}", e);
            }
            try
            {
                StateLoader.Load(model, tensors.Select(t => (rename(t.Name), t.Tensor)), LoadPolicy.Exact, path);
            }
            catch (StateDictMismatchException e)
            {
                model.Dispose();
                throw new ModelFileException(path, $"the tensors do not fit the architecture ({e.Report.DescribeProblems()}); the file was written for another model", e);
            }
            catch
            {
                model.Dispose();
                throw;
            }
            model.eval();
            return new Vision.VisionModel(model, pre, classes, $"{path} ({arch.Zoo}, {classes.Length} classes)", architecture: arch, training: training);
        }
        finally
        {
            foreach (var (_, tensor) in tensors) tensor.Dispose();
        }
    }
}
