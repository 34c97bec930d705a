using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>An ONNX node attribute as plain data (an integer, a float, a string or a list of integers), so that ops
/// describe their export without the protobuf types of the ONNX layer.</summary>
internal sealed record OnnxAttribute(string Name, object Value)
{
    public static OnnxAttribute Attr(string name, long value) => new(name, value);

    public static OnnxAttribute Attr(string name, double value) => new(name, value);

    public static OnnxAttribute Attr(string name, string value) => new(name, value);

    public static OnnxAttribute Attr(string name, IEnumerable<long> values) => new(name, values.ToArray());
}

/// <summary>
/// What an op sees while it writes itself as ONNX (<see cref="Op.ExportOnnx"/>): the node being written, its inputs
/// as ONNX value names and their shapes, its parameters, and the means to add nodes and initializers under names
/// that collide with nothing. The ONNX exporter implements it; the op says only how it maps to ONNX operators.
/// </summary>
internal abstract class OnnxExportContext
{
    /// <summary>The opset of the default domain being written.</summary>
    public abstract int Opset { get; }

    /// <summary>The whole graph (for translations that look at a neighbouring node).</summary>
    public abstract ModelGraph Graph { get; }

    /// <summary>The node being written.</summary>
    public abstract Node Node { get; }

    /// <summary>The ONNX values of the node's inputs, in order.</summary>
    public abstract IReadOnlyList<string> Inputs { get; }

    /// <summary>The shapes of the node's inputs.</summary>
    public abstract IReadOnlyList<long[]> InputShapes { get; }

    /// <summary>The shape of the node's output.</summary>
    public abstract long[] OutputShape { get; }

    /// <summary>The ONNX value holding the output of an earlier graph node.</summary>
    public abstract string ValueOf(string graphNode);

    /// <summary>One of the node's state tensors ("weight", "running_mean", …) as the module holds it now.</summary>
    public abstract Tensor Parameter(string name);

    /// <summary>A value name based on <paramref name="baseName"/> that no other value or graph node uses.</summary>
    public abstract string Fresh(string baseName);

    /// <summary>Adds a node computing <paramref name="output"/>; returns <paramref name="output"/>.</summary>
    public abstract string Emit(string opType, IReadOnlyList<string> inputs, string output, params OnnxAttribute[] attributes);

    /// <summary>Adds a float initializer named <paramref name="name"/> (a parameter's name, unique by construction)
    /// holding <paramref name="value"/>.</summary>
    public abstract string Initializer(string name, Tensor value);

    /// <summary>Adds a float initializer under a fresh name based on <paramref name="name"/>.</summary>
    public abstract string Floats(string name, long[] shape, float[] values);

    /// <summary>Adds a 1-D int64 initializer under a fresh name based on <paramref name="name"/>.</summary>
    public abstract string Ints(string name, params long[] values);

    /// <summary>States which ONNX value is the node's output.</summary>
    public abstract void SetOutput(string value);

    /// <summary>A float scalar initializer under a fresh name.</summary>
    public string Scalar(string name, double value) => Floats(name, [], [(float)value]);

    /// <summary>The common case: one ONNX node, named after the graph node, is the node's output.</summary>
    public void Out(string opType, IReadOnlyList<string> inputs, params OnnxAttribute[] attributes) =>
        SetOutput(Emit(opType, inputs, Fresh(Node.Name), attributes));

    /// <summary>ONNX's window attributes for a padding: auto_pad for "same" padding, else explicit pads.</summary>
    public static OnnxAttribute Window(PadSpec padding) => padding.Kind switch
    {
        PadKind.SameUpper => OnnxAttribute.Attr("auto_pad", "SAME_UPPER"),
        PadKind.SameLower => OnnxAttribute.Attr("auto_pad", "SAME_LOWER"),
        _ => OnnxAttribute.Attr("pads", [padding.Top, padding.Left, padding.Bottom, padding.Right]),
    };
}
