using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Mean or maximum over axes (ONNX ReduceMean / ReduceMax); the batch axis may not be reduced
/// away unless kept.</summary>
public sealed record ReduceOp(PoolKind Reduction, int[] Axes, bool KeepDims = true) : Op
{
    /// <inheritdoc />
    public override string Kind => Reduction == PoolKind.Avg ? "ReduceMean" : "ReduceMax";

    private long[] Normalized(int rank) => Axes.Select(a => (long)(a < 0 ? a + rank : a)).Distinct().Order().ToArray();

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        var axes = Normalized(x.Length);
        if (axes.Any(a => a < 0 || a >= x.Length)) throw Bad($"{Kind}: axes [{string.Join(",", Axes)}] out of range for rank {x.Length}");
        if (KeepDims) return x.Select((d, i) => axes.Contains(i) ? 1 : d).ToArray();
        return x.Where((_, i) => !axes.Contains(i)).ToArray();
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var axes = Axes.Select(a => (long)a).ToArray();
        // ReduceMax takes axes as an input from opset 18 on, ReduceMean too.
        if (onnx.Opset >= 18) onnx.Out(Kind, [onnx.Inputs[0], onnx.Ints(onnx.Node.Name + ".axes", axes)], Attr("keepdims", KeepDims ? 1 : 0));
        else onnx.Out(Kind, onnx.Inputs, Attr("axes", axes), Attr("keepdims", KeepDims ? 1 : 0));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var axes = Normalized((int)xs[0].dim());
        return Reduction == PoolKind.Avg ? xs[0].mean(axes, keepdim: KeepDims) : xs[0].amax(axes, keepdim: KeepDims);
    });

    /// <inheritdoc />
    public bool Equals(ReduceOp? other) => other is not null && Reduction == other.Reduction && KeepDims == other.KeepDims && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => Axes.Length;

    /// <inheritdoc />
    public override string Describe() => $"axes [{string.Join(",", Axes)}]" + (KeepDims ? ", keepdims" : "");
}
