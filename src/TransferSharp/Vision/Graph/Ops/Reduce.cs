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

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
        [("ReduceMean", onnx => ImportOnnx(onnx, PoolKind.Avg)), ("ReduceMax", onnx => ImportOnnx(onnx, PoolKind.Max))];

    private static void ImportOnnx(OnnxImportContext onnx, PoolKind kind)
    {
        var x = onnx.Value(0);
        // ReduceMean/ReduceMax take axes as an input from opset 18 on.
        long[]? axes = onnx.Opset >= 18 ? onnx.OptionalConstant(1, "axes")?.AsInts() : onnx.Ints("axes");
        if (onnx.Opset >= 18 && axes is { Length: 0 }) axes = null;
        if (axes is null && onnx.Opset >= 18 && onnx.Int("noop_with_empty_axes", 0) != 0) { onnx.Emit(x); return; }
        axes ??= Enumerable.Range(0, x.Shape.Length).Select(i => (long)i).ToArray();
        bool keep = onnx.Int("keepdims", 1) != 0;
        if (!keep && axes.Select(a => OnnxImportContext.Norm(a, x.Shape.Length)).Contains(0))
            throw onnx.Unsupported("reducing away the batch axis");
        onnx.Emit(onnx.Add(new ReduceOp(kind, axes.Select(a => (int)a).ToArray(), keep), onnx.NodeName(), x));
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
