using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Flattens dimensions from <see cref="StartDim"/> on (PyTorch flatten).</summary>
public sealed record FlattenOp(int StartDim = 1) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        int s = StartDim < 0 ? StartDim + x.Length : StartDim;
        var o = new long[s + 1];
        Array.Copy(x, o, s);
        o[s] = 1;
        for (int i = s; i < x.Length; i++) o[s] *= x[i];
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        int start = StartDim < 0 ? StartDim + onnx.InputShapes[0].Length : StartDim;
        if (start == 1) onnx.Out("Flatten", onnx.Inputs, Attr("axis", 1));
        else onnx.Out("Reshape", [onnx.Inputs[0], onnx.Ints(onnx.Node.Name + ".shape", [.. Enumerable.Repeat(0L, start), -1])]);
    }

    /// <summary>The ONNX operators imported as this op (flattening at an axis other than 1 is a reshape).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Flatten", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        int axis = OnnxImportContext.Norm(onnx.Int("axis", 1), x.Shape.Length);
        Op op;
        if (axis == 1) op = new FlattenOp(1);
        else if (axis == 0) op = new ReshapeOp([1, -1]);
        else
        {
            long rest = 1;
            for (int i = axis; i < x.Shape.Length; i++) rest *= x.Shape[i];
            op = new ReshapeOp([-1, rest]);
        }
        onnx.Emit(onnx.Add(op, onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].flatten(StartDim));
}
