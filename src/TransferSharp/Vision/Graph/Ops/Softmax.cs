using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Softmax over one axis.</summary>
public sealed record SoftmaxOp(int Axis = -1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Softmax", [onnx.Inputs[0]], Attr("axis", Axis));

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Softmax", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        int rank = x.Shape.Length;
        int axis = OnnxImportContext.Norm(onnx.Int("axis", onnx.Opset < 13 ? 1 : -1), rank);
        // Before opset 13, Softmax flattened the input to 2-D at the axis: the same as a softmax over
        // that axis only when every later dimension has size 1.
        if (onnx.Opset < 13 && axis != rank - 1 && x.Shape[(axis + 1)..].Any(d => d != 1))
            throw onnx.Unsupported($"opset-{onnx.Opset} softmax over the flattened dimensions {axis}.. of shape [{string.Join(",", x.Shape)}]");
        onnx.Emit(onnx.Add(new SoftmaxOp(axis), onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.softmax(xs[0], Axis));
}
