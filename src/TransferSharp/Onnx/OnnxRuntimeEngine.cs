using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;
using OnnxProto = global::Onnx;

namespace TransferSharp.Onnx;

/// <summary>How an <see cref="OnnxRuntimeEngine"/> runs.</summary>
public sealed record OnnxRuntimeOptions
{
    /// <summary>Intra-op threads (0: ONNX Runtime's choice).</summary>
    public int Threads { get; init; }

    /// <summary>When the file fixes the batch size (CNTK's ResNet18.onnx says 1), make it dynamic in the
    /// session's copy of the model so any batch runs in one call.</summary>
    public bool RelaxFixedBatch { get; init; } = true;

    /// <summary>ONNX Runtime graph optimisation level.</summary>
    public GraphOptimizationLevel Optimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;
}

/// <summary>
/// Runs an .onnx file (exported by TransferSharp, or any single-image-input CNN) in ONNX Runtime with the
/// contract of <see cref="Vision.Graph.GraphModule"/>: <see cref="Forward"/> gives the model output
/// (logits), <see cref="PooledFeatures"/> the pooled feature vector [N, F]. Tensors in and out are
/// TorchSharp float32 tensors on the CPU; the caller owns the results.
/// </summary>
public sealed class OnnxRuntimeEngine : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string? _featuresOutput;

    /// <summary>Opens a file.</summary>
    public OnnxRuntimeEngine(string path, OnnxRuntimeOptions? options = null)
        : this(OnnxModelFile.Read(System.IO.Path.GetFullPath(path)), System.IO.Path.GetFullPath(path), options, onDisk: true)
    {
    }

    /// <summary>Runs a model held in memory (<paramref name="label"/> names it in errors); with
    /// <paramref name="onDisk"/>, <paramref name="label"/> is its file, which ONNX Runtime reads itself (external data included).</summary>
    internal OnnxRuntimeEngine(OnnxProto.ModelProto model, string label, OnnxRuntimeOptions? options = null, bool onDisk = false)
    {
        options ??= new OnnxRuntimeOptions();
        Path = label;
        var inputs = OnnxModelFile.FedInputs(model.Graph);
        if (inputs.Count != 1) throw new OnnxException(Path, $"has {inputs.Count} inputs; the engine runs single-input image models");
        InputName = inputs[0].Name;
        OutputName = model.Graph.Output[0].Name;
        _featuresOutput = model.Graph.Output.Skip(1).FirstOrDefault(o => o.Name == OnnxExporter.FeaturesOutputName)?.Name;
        Metadata = OnnxModelFile.Metadata(model);
        var dims = inputs[0].Type?.TensorType?.Shape?.Dim;
        InputShape = dims?.Select(d => d.HasDimValue ? d.DimValue : -1L).ToArray() ?? [];
        byte[]? patched = null;
        if (options.RelaxFixedBatch && dims is { Count: > 0 } && dims[0].HasDimValue)
        {
            foreach (var v in model.Graph.Input.Concat(model.Graph.Output))
            {
                if (v.Type?.TensorType?.Shape?.Dim is { Count: > 0 } d && (v.Name == InputName || model.Graph.Output.Contains(v)))
                    d[0] = new OnnxProto.TensorShapeProto.Types.Dimension { DimParam = "batch" };
            }
            model.Graph.ValueInfo.Clear();
            patched = model.ToByteArray();
            InputShape[0] = -1;
        }
        using var so = new SessionOptions { GraphOptimizationLevel = options.Optimization };
        if (options.Threads > 0) so.IntraOpNumThreads = options.Threads;
        try
        {
            var bytes = patched ?? (onDisk ? null : model.ToByteArray());
            _session = bytes is null ? new InferenceSession(Path, so) : new InferenceSession(bytes, so);
        }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxException(Path, $"ONNX Runtime cannot load it: {e.Message}", e);
        }
    }

    /// <summary>The file (for a model exported in memory, a description of it).</summary>
    public string Path { get; }

    /// <summary>Name of the image input.</summary>
    public string InputName { get; }

    /// <summary>Name of the main output.</summary>
    public string OutputName { get; }

    /// <summary>The input shape the session takes (-1 for dynamic dimensions).</summary>
    public long[] InputShape { get; }

    /// <summary>The file's metadata_props (TransferSharp writes its preprocessing there).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The preprocessing recorded in the file's metadata, or null when it has none.</summary>
    public Vision.Preprocessing.Preprocessing? Preprocessing => OnnxExporter.ReadPreprocessing(Metadata, Path);

    /// <summary>The model output for a batch [N, C, H, W].</summary>
    public Tensor Forward(Tensor input) => Run(input, OutputName);

    /// <summary>Pooled features [N, F]: the file's "features" output when it has one (TransferSharp
    /// exports do), else the main output, averaged over its spatial dimensions when it has any.</summary>
    public Tensor PooledFeatures(Tensor input)
    {
        var y = Run(input, _featuresOutput ?? OutputName);
        if (y.dim() <= 2) return y;
        using (y) return y.flatten(2).mean([2]);
    }

    /// <summary>Runs the model and returns the named output.</summary>
    public Tensor Run(Tensor input, string output)
    {
        float[] data;
        using (var c = input.to(float32).cpu().contiguous()) data = c.data<float>().ToArray();
        using var value = OrtValue.CreateTensorValueFromMemory(data, input.shape);
        using var run = new RunOptions();
        IDisposableReadOnlyCollection<OrtValue> results;
        try
        {
            results = _session.Run(run, [InputName], [value], [output]);
        }
        catch (OnnxRuntimeException e)
        {
            throw new TransferSharpException($"{Path}: ONNX Runtime cannot run input [{string.Join(",", input.shape)}] "
                + $"(the model takes [{string.Join(",", InputShape.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]): {e.Message}", e);
        }
        using var _ = results;
        var r = results[0];
        var shape = r.GetTensorTypeAndShape().Shape;
        var values = r.GetTensorDataAsSpan<float>().ToArray();
        using var flat = tensor(values);
        return flat.reshape(shape);
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
