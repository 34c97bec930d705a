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
