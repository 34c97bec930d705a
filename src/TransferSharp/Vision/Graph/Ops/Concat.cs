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

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.cat(xs.ToArray(), Axis));
}
