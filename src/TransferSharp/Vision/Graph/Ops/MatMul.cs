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

    /// <summary>The ONNX operators imported as this op; a constant 2-D B on a computed A becomes a bias-free
    /// <see cref="LinearOp"/> instead, so its weight is trainable.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("MatMul", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        if (onnx.IsConstant(1) && !onnx.IsConstant(0) && onnx.Constant(1, "B") is { Shape.Length: 2 } w)
        {
            var name = onnx.NodeName(1);
            onnx.Emit(onnx.AddWithState(new LinearOp((int)w.Shape[0], (int)w.Shape[1], false), name, onnx.Value(0),
                ("weight", new ConstTensor([w.Shape[1], w.Shape[0]], w.Transposed2D()))));
            return;
        }
        var a = onnx.Value(0);
        var b = onnx.Value(1);
        onnx.Emit(onnx.Add(new MatMulOp(), onnx.NodeName(), a, b));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].matmul(xs[1]));
}
