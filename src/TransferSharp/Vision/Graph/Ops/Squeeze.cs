namespace TransferSharp.Vision.Graph;

/// <summary>Removes or inserts size-1 axes.</summary>
public sealed record SqueezeOp(int[] Axes, bool Unsqueeze = false) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override string Kind => Unsqueeze ? "Unsqueeze" : "Squeeze";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0].ToList();
        if (Unsqueeze)
        {
            int rank = x.Count + Axes.Length;
            foreach (var a in Axes.Select(a => a < 0 ? a + rank : a).Order()) x.Insert(a, 1);
            return x.ToArray();
        }
        var axes = Axes.Select(a => a < 0 ? a + x.Count : a).ToHashSet();
        foreach (var a in axes) if (x[a] != 1) throw Bad($"Squeeze: axis {a} has size {x[a]}, not 1");
        return x.Where((_, i) => !axes.Contains(i)).ToArray();
    }

    internal override void ExportOnnx(OnnxExportContext onnx) =>
        onnx.Out(Kind, [onnx.Inputs[0], onnx.Ints(onnx.Node.Name + ".axes", Axes.Select(a => (long)a).ToArray())]);

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
        [("Squeeze", onnx => ImportOnnx(onnx, false)), ("Unsqueeze", onnx => ImportOnnx(onnx, true))];

    private static void ImportOnnx(OnnxImportContext onnx, bool unsqueeze)
    {
        long[]? axes = onnx.Opset >= 13 ? onnx.OptionalConstant(1, "axes")?.AsInts() : onnx.Ints("axes");
        if (onnx.IsConstant(0))
        {
            if (axes is null && unsqueeze) throw onnx.Malformed("Unsqueeze needs axes");
            // Without axes, Squeeze drops every size-1 axis of the constant.
            var shape = onnx.Constant(0, "data").Shape;
            axes ??= Enumerable.Range(0, shape.Length).Where(i => shape[i] == 1).Select(i => (long)i).ToArray();
            onnx.Fold(new SqueezeOp(axes.Select(a => (int)a).ToArray(), unsqueeze));
            return;
        }
        var x = onnx.Value(0);
        if (axes is null)
        {
            if (unsqueeze) throw onnx.Malformed("Unsqueeze needs axes");
            // Every size-1 axis except the batch, which is dynamic.
            axes = Enumerable.Range(1, x.Shape.Length - 1).Where(i => x.Shape[i] == 1).Select(i => (long)i).ToArray();
        }
        if (axes.Length == 0) { onnx.Emit(x); return; }
        onnx.Emit(onnx.Add(new SqueezeOp(axes.Select(a => (int)a).ToArray(), unsqueeze), onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var x = xs[0];
        var shape = InferShapeDynamic(x.shape);
        return x.reshape(shape);
    });

    private long[] InferShapeDynamic(long[] shape)
    {
        // Same rules, applied to the run-time shape (the batch dimension may differ).
        return InferShape([shape]);
    }

    /// <inheritdoc />
    public bool Equals(SqueezeOp? other) => other is not null && Unsqueeze == other.Unsqueeze && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => Axes.Length;
}
