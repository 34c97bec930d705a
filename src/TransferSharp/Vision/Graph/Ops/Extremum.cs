namespace TransferSharp.Vision.Graph;

/// <summary>Element-wise maximum or minimum of its inputs with broadcasting (ONNX Max / Min).</summary>
public sealed record ExtremumOp(bool Maximum) : Op
{
    /// <inheritdoc />
    public override string Kind => Maximum ? "Max" : "Min";

    /// <inheritdoc />
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => new BinaryOp(BinaryKind.Add).InferShape(inputs);

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out(Kind, onnx.Inputs);

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var y = xs[0].alias();
        for (int i = 1; i < xs.Count; i++)
        {
            var next = Maximum ? y.maximum(xs[i]) : y.minimum(xs[i]);
            y.Dispose();
            y = next;
        }
        return y;
    });
}
