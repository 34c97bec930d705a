using System.Globalization;

namespace TransferSharp.Vision.Graph;

/// <summary>Takes a strided range along one axis (end exclusive, clamped as in ONNX/Python).</summary>
public sealed record SliceOp(int Axis, long Start, long End, long Step = 1) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        int a = Axis < 0 ? Axis + o.Length : Axis;
        var (s, e) = Clamp(o[a]);
        o[a] = Step > 0 ? Math.Max(0, (e - s + Step - 1) / Step) : Math.Max(0, (s - e + (-Step) - 1) / -Step);
        return o;
    }

    internal (long Start, long End) Clamp(long dim)
    {
        long s = Start < 0 ? Start + dim : Start, e = End < 0 ? End + dim : End;
        if (Step > 0) { s = Math.Clamp(s, 0, dim); e = Math.Clamp(e, 0, dim); }
        else { s = Math.Clamp(s, -1, dim - 1); e = Math.Clamp(e, -1, dim - 1); }
        return (s, e);
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        onnx.Out("Slice", [onnx.Inputs[0], onnx.Ints(name + ".starts", Start), onnx.Ints(name + ".ends", End), onnx.Ints(name + ".axes", Axis),
            onnx.Ints(name + ".steps", Step)]);
    }

    /// <summary>The ONNX operators imported as this op (one slice per sliced axis).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Slice", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        long[] starts, ends;
        long[]? axes, steps = null;
        if (onnx.Opset < 10)
        {
            starts = onnx.Ints("starts") ?? throw onnx.Malformed("starts missing");
            ends = onnx.Ints("ends") ?? throw onnx.Malformed("ends missing");
            axes = onnx.Ints("axes");
        }
        else
        {
            starts = onnx.Constant(1, "starts").AsInts();
            ends = onnx.Constant(2, "ends").AsInts();
            axes = onnx.OptionalConstant(3, "axes")?.AsInts();
            steps = onnx.OptionalConstant(4, "steps")?.AsInts();
        }
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        if (onnx.IsConstant(0))
        {
            if (starts.Length != 1) throw onnx.Unsupported("folding a Slice of a constant on more than one axis");
            int rank = onnx.Constant(0, "data").Shape.Length;
            onnx.Fold(new SliceOp(OnnxImportContext.Norm(axes[0], rank), Math.Clamp(starts[0], -(1L << 62), 1L << 62), Math.Clamp(ends[0], -(1L << 62), 1L << 62), steps[0]));
            return;
        }
        var x = onnx.Value(0);
        var baseName = onnx.NodeName();
        for (int k = 0; k < starts.Length; k++)
        {
            var name = k == 0 ? baseName : onnx.Extra(baseName, k.ToString(CultureInfo.InvariantCulture));
            int axis = OnnxImportContext.Norm(axes[k], x.Shape.Length);
            // INT64_MAX/MIN are ONNX's "to the end"; SliceOp clamps them.
            x = onnx.Add(new SliceOp(axis, Math.Clamp(starts[k], -(1L << 62), 1L << 62), Math.Clamp(ends[k], -(1L << 62), 1L << 62), steps[k]), name, x);
        }
        onnx.Emit(x);
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var x = xs[0];
        int a = Axis < 0 ? Axis + (int)x.dim() : Axis;
        var (s, e) = Clamp(x.shape[a]);
        if (Step == 1) return x.narrow(a, s, Math.Max(0, e - s));
        if (Step > 0) return x.slice(a, s, e, Step);
        using var idx = TorchSharp.torch.arange(s, e, Step, dtype: TorchSharp.torch.int64, device: x.device);
        return x.index_select(a, idx);
    });

    /// <inheritdoc />
    public override string Describe() => $"axis {Axis}: {Start}..{End}" + (Step != 1 ? $" step {Step}" : "");
}
