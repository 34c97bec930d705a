using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// Parametric ReLU: x where x ≥ 0, else slope·x, with a learnable slope ("weight") of shape <paramref name="SlopeShape"/>
/// broadcast against the input as ONNX (numpy) broadcasts it — [C, 1, 1] on an [N, C, H, W] map is PyTorch's per-channel
/// nn.PReLU as its ONNX export writes it, [1] one slope for all.
/// </summary>
public sealed record PReluOp(long[] SlopeShape) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var shape = BinaryOp.BroadcastShapes(inputs[0], SlopeShape);
        if (shape is null || !shape.SequenceEqual(inputs[0]))
            throw Bad($"PRelu: slope [{string.Join(",", SlopeShape)}] does not broadcast to the input [{string.Join(",", inputs[0])}]");
        return inputs[0];
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new("weight", SlopeShape)];

    internal override void ExportOnnx(OnnxExportContext onnx) =>
        onnx.Out("PRelu", [onnx.Inputs[0], onnx.Initializer(onnx.Node.Name + ".weight", onnx.Parameter("weight"))]);

    /// <summary>The ONNX operators imported as this op (the slope must be a constant: it becomes the learnable weight).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("PRelu", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        if (!onnx.IsConstant(1)) throw onnx.Unsupported("PRelu with a computed slope (only a constant slope becomes the layer's weight)");
        var slope = onnx.Constant(1, "slope");
        var x = onnx.Value(0);
        var op = new PReluOp(slope.Shape.Length == 0 ? [1] : slope.Shape);
        if (BinaryOp.BroadcastShapes(x.Shape, op.SlopeShape) is not { } s || !s.SequenceEqual(x.Shape))
            throw onnx.Malformed($"PRelu slope [{string.Join(",", slope.Shape)}] does not broadcast to the input [{string.Join(",", x.Shape)}]");
        onnx.Emit(onnx.AddWithState(op, onnx.NodeName(1), x, ("weight", new ConstTensor(op.SlopeShape, slope.AsFloats()))));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new PReluLayer(this);

    /// <inheritdoc />
    public bool Equals(PReluOp? other) => other is not null && SlopeShape.SequenceEqual(other.SlopeShape);

    /// <inheritdoc />
    public override int GetHashCode() => SlopeShape.Length;

    /// <inheritdoc />
    public override string Describe() => $"slope [{string.Join(",", SlopeShape)}]";
}

/// <summary>Parametric ReLU with PyTorch's initial slope 0.25.</summary>
public sealed class PReluLayer : Layer
{
    /// <summary>Creates the layer.</summary>
    public PReluLayer(PReluOp op) : base(op) { RegisterDeclared(p => full(p.Shape, 0.25f)); }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var x = inputs[0];
        // torch.prelu wants a 1-D weight on dimension 1; ONNX's slope broadcasts from the last dimension, so spell it out.
        return where(x >= 0, x, x * get_parameter("weight")!);
    }
}
