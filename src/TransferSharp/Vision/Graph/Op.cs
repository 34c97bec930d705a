namespace TransferSharp.Vision.Graph;

/// <summary>
/// What a graph node computes, as data. Zoo builders and the ONNX importer produce ops; the
/// interpreter turns each into a <see cref="Layer"/>; ONNX export, summaries and inference rewrites
/// read them. Shapes have any rank, the batch dimension first: image feature maps [N, C, H, W], token sequences
/// [N, T, C] (vision transformers), feature vectors [N, F].
/// </summary>
public abstract record Op
{
    /// <summary>Short name of the op kind, as shown in summaries ("Conv2d", "Add", …).</summary>
    public virtual string Kind => GetType().Name.EndsWith("Op", StringComparison.Ordinal) ? GetType().Name[..^2] : GetType().Name;

    /// <summary>How many inputs the op takes; -1 for any number ≥ 1.</summary>
    public virtual int Arity => 1;

    /// <summary>The output shape for the given input shapes, or an <see cref="GraphException"/>.</summary>
    public abstract long[] InferShape(IReadOnlyList<long[]> inputs);

    /// <summary>Multiply-accumulate operations of one forward pass (0 for ops that do none worth counting).</summary>
    public virtual long Macs(IReadOnlyList<long[]> inputs, long[] output) => 0;

    /// <summary>A fresh executable layer (parameters initialised randomly where the op has any).</summary>
    public abstract Layer CreateLayer();

    /// <summary>The tensors its layer holds, under PyTorch's state-dict names, with their shapes: declared here once and
    /// read by the layer (to register them), by <see cref="GraphJson.ParameterElements"/> (to bound a stored graph's
    /// size before allocating it) and by anything else that needs them. Empty for ops without state.</summary>
    public virtual IReadOnlyList<ParameterShape> ParameterShapes => [];

    /// <summary>Writes the op as ONNX nodes and initializers through the exporter's <paramref name="onnx"/> context. An op
    /// without a translation keeps this default, which the exporter reports as not exportable.</summary>
    internal virtual void ExportOnnx(OnnxExportContext onnx) =>
        throw new NotSupportedException($"the exporter has no ONNX translation for op {Kind} ({GetType().Name})");

    /// <summary>A short human description of the arguments for summaries.</summary>
    public virtual string Describe() => "";

    /// <summary>True when the output may share storage with an input or a buffer (views such as
    /// reshape or slice, identity, constants): such values are never overwritten in place.</summary>
    public virtual bool OutputMayAlias => false;

    internal static long Numel(long[] shape) { long n = 1; foreach (var d in shape) n *= d; return n; }

    internal static GraphException Bad(string message) => new(message);

    internal static void RequireRank(long[] shape, int rank, string what)
    {
        if (shape.Length != rank) throw Bad($"{what} expects a {rank}-D input, got shape [{string.Join(",", shape)}]");
    }
}

/// <summary>One tensor of an op's state: its state-dict name ("weight", "running_mean", …), its shape, and whether it
/// is a buffer (state that is not trained, such as BatchNorm's running statistics) rather than a parameter. The empty
/// name (<see cref="NodeItself"/>) is a tensor the node's own path names, as a reference model holds a parameter of its
/// own rather than of a submodule (timm's <c>cls_token</c>, <c>pos_embed</c>).</summary>
public sealed record ParameterShape(string Name, long[] Shape, bool IsBuffer = false)
{
    /// <summary>The name of a tensor named by its node's path.</summary>
    public const string NodeItself = "";
}
