namespace TransferSharp.Vision.Graph;

/// <summary>Matrix product of two inputs (numpy matmul semantics).</summary>
public sealed record MatMulOp : Op
{
    /// <inheritdoc />
    public override int Arity => 2;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var a = inputs[0];
        var b = inputs[1];
        if (a.Length < 2 || b.Length < 2) throw Bad("MatMul expects inputs of rank ≥ 2");
        if (a[^1] != b[^2]) throw Bad($"MatMul: inner dimensions {a[^1]} and {b[^2]} differ");
        var batch = BinaryOp.Broadcast(a[..^2], b[..^2]);
        return [.. batch, a[^2], b[^1]];
    }

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => Numel(output) * inputs[0][^1];

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("MatMul", onnx.Inputs);

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].matmul(xs[1]));
}
