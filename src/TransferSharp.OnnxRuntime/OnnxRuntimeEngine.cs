using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using static TorchSharp.torch;
using TransferSharp.Text.Transformers;
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
/// (logits), <see cref="PooledFeatures"/> the pooled feature vector [N, F]. A model with several inputs (a text encoder's
/// token ids, attention mask and token types, int64) runs by name through <see cref="Run(IReadOnlyDictionary{string, Tensor}, string)"/>;
/// as a text encoder's engine (<see cref="ForTextEncoder"/>) it gives <see cref="TextEncoder.Encode"/> the last hidden
/// state. Tensors in and out are TorchSharp tensors on the CPU; the caller owns the results.
/// </summary>
public sealed class OnnxRuntimeEngine : ITextInferenceEngine
{
    private readonly InferenceSession _session;
    private readonly string? _featuresOutput;
    private readonly Dictionary<string, TensorElementType> _inputTypes;

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
        if (inputs.Count == 0) throw new OnnxException(Path, "has no input to feed");
        InputName = inputs[0].Name;
        InputNames = inputs.Select(i => i.Name).ToArray();
        _inputTypes = inputs.ToDictionary(i => i.Name, i => (TensorElementType)(i.Type?.TensorType?.ElemType ?? (int)TensorElementType.Float), StringComparer.Ordinal);
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
                if (v.Type?.TensorType?.Shape?.Dim is { Count: > 0 } d && (InputNames.Contains(v.Name) || model.Graph.Output.Contains(v)))
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

    /// <summary>Name of the (first) input: the image, or a text encoder's token ids.</summary>
    public string InputName { get; }

    /// <summary>Names of all the inputs the model is fed, in the file's order.</summary>
    public IReadOnlyList<string> InputNames { get; }

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

    /// <summary>Runs a single-input model and returns the named output.</summary>
    public Tensor Run(Tensor input, string output)
    {
        if (InputNames.Count != 1)
            throw new TransferSharpException($"{Path}: the model has {InputNames.Count} inputs ({string.Join(", ", InputNames)}); feed them by name");
        return Run(new Dictionary<string, Tensor> { [InputName] = input }, output);
    }

    /// <summary>Runs the model on named inputs (each converted to the element type the model declares for it: float32,
    /// or int64 for token ids and masks) and returns the named float32 output. A missing or unknown input name is a
    /// <see cref="TransferSharpException"/> naming the model's inputs.</summary>
    public Tensor Run(IReadOnlyDictionary<string, Tensor> inputs, string output)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var missing = InputNames.Where(n => !inputs.ContainsKey(n)).ToList();
        var unknown = inputs.Keys.Where(k => !_inputTypes.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unknown.Count > 0)
            throw new TransferSharpException($"{Path}: the model's inputs are {string.Join(", ", InputNames)}"
                + (missing.Count > 0 ? $"; not fed: {string.Join(", ", missing)}" : "") + (unknown.Count > 0 ? $"; not inputs of the model: {string.Join(", ", unknown)}" : ""));
        var names = new string[InputNames.Count];
        var values = new OrtValue[InputNames.Count];
        try
        {
            for (int i = 0; i < names.Length; i++)
            {
                names[i] = InputNames[i];
                values[i] = Value(inputs[names[i]], _inputTypes[names[i]]);
            }
            using var run = new RunOptions();
            IDisposableReadOnlyCollection<OrtValue> results;
            try
            {
                results = _session.Run(run, names, values, [output]);
            }
            catch (OnnxRuntimeException e)
            {
                var fed = string.Join(", ", names.Select(n => $"{n} [{string.Join(",", inputs[n].shape)}]"));
                throw new TransferSharpException($"{Path}: ONNX Runtime cannot run {fed} "
                    + $"(the model takes [{string.Join(",", InputShape.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]): {e.Message}", e);
            }
            using var _ = results;
            var r = results[0];
            var shape = r.GetTensorTypeAndShape().Shape;
            using var flat = tensor(r.GetTensorDataAsSpan<float>().ToArray());
            return flat.reshape(shape);
        }
        finally
        {
            foreach (var v in values) v?.Dispose();
        }
    }

    /// <summary>A tensor as an ONNX Runtime value of the input's element type (a copy of its data).</summary>
    private static OrtValue Value(Tensor input, TensorElementType type)
    {
        if (type == TensorElementType.Int64)
        {
            using var c = input.to(int64).cpu().contiguous();
            return OrtValue.CreateTensorValueFromMemory(c.data<long>().ToArray(), input.shape);
        }
        using (var c = input.to(float32).cpu().contiguous())
            return OrtValue.CreateTensorValueFromMemory(c.data<float>().ToArray(), input.shape);
    }

    /// <summary>Name of the output a text encoder's engine reads, the last hidden state.</summary>
    public const string LastHiddenStateOutput = "last_hidden_state";

    /// <summary>
    /// <paramref name="encoder"/>'s graph (its current weights) exported to ONNX in memory and opened in ONNX Runtime, as an
    /// engine for its <see cref="TextEncoder.Encode"/>: <c>encoder.UseEngine(OnnxRuntimeEngine.ForTextEncoder(encoder))</c>.
    /// Embeddings equal the TorchSharp graph's to float32 rounding; on CPUs where ONNX Runtime's matrix kernels are faster
    /// than LibTorch's (AMD EPYC: AVX-512 against MKL's AVX2 path) it encodes faster (docs/benchmarks.md, text-encode).
    /// </summary>
    public static OnnxRuntimeEngine ForTextEncoder(TextEncoder encoder, OnnxRuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        var proto = OnnxExporter.Build(encoder.Module, new OnnxExportOptions { InputName = "input_ids", OutputName = LastHiddenStateOutput, IncludeFeatures = false });
        return new OnnxRuntimeEngine(proto, $"text encoder {encoder.Name}, exported to ONNX in memory", options);
    }

    /// <inheritdoc />
    public string EngineName => "onnxruntime";

    /// <inheritdoc />
    public Tensor LastHiddenState(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        var feeds = new Dictionary<string, Tensor> { [InputName] = inputIds };
        if (_inputTypes.ContainsKey(Text.Transformers.Bert.AttentionMask)) feeds[Text.Transformers.Bert.AttentionMask] = attentionMask;
        if (_inputTypes.ContainsKey(Text.Transformers.Bert.TokenTypeIds)) feeds[Text.Transformers.Bert.TokenTypeIds] = tokenTypeIds;
        return Run(feeds, _session.OutputMetadata.ContainsKey(LastHiddenStateOutput) ? LastHiddenStateOutput : OutputName);
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
