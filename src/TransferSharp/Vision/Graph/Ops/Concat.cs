using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Concatenation along an axis.</summary>
public sealed record ConcatOp(int Axis = 1) : Op
{
    /// <inheritdoc />
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        int axis = Axis < 0 ? Axis + o.Length : Axis;
        for (int i = 1; i < inputs.Count; i++)
        {
            var s = inputs[i];
            if (s.Length != o.Length) throw Bad("Concat inputs differ in rank");
            for (int d = 0; d < o.Length; d++)
                if (d != axis && s[d] != o[d]) throw Bad($"Concat inputs differ in dimension {d}: {o[d]} and {s[d]}");
            o[axis] += s[axis];
        }
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Concat", onnx.Inputs, Attr("axis", Axis));

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Concat", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        long axis = onnx.Int("axis", long.MinValue);
        if (axis == long.MinValue) throw onnx.Malformed("Concat needs an axis");
        var present = Enumerable.Range(0, onnx.InputCount).Where(onnx.Has).ToArray();
        // Constants concatenated are shape computations: 1-D, so the folded axis is 0 whatever the attribute says.
        if (present.All(onnx.IsConstant))
        {
            onnx.Fold(new ConcatOp(0));
            return;
        }
        var xs = present.Select(onnx.Value).ToArray();
        if (xs.Length == 1) { onnx.Emit(xs[0]); return; }
        onnx.Emit(onnx.Add(new ConcatOp(OnnxImportContext.Norm(axis, xs[0].Shape.Length)), onnx.NodeName(), xs));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.cat(xs.ToArray(), Axis));
}
