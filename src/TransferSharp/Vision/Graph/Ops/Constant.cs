using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>A constant tensor (kept as a non-trainable buffer named "value").</summary>
public sealed record ConstantOp(long[] Shape) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override int Arity => 0;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Shape;

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new("value", Shape, IsBuffer: true)];

    internal override void ExportOnnx(OnnxExportContext onnx) =>
        onnx.SetOutput(onnx.Initializer(onnx.Node.Name + ".value", onnx.Parameter("value")));

    /// <inheritdoc />
    public override Layer CreateLayer() => new ConstantLayer(this);

    /// <inheritdoc />
    public bool Equals(ConstantOp? other) => other is not null && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => Shape.Length;

    /// <inheritdoc />
    public override string Describe() => $"[{string.Join(",", Shape)}]";
}

/// <summary>A constant tensor held as a buffer named "value".</summary>
public sealed class ConstantLayer : Layer
{
    /// <summary>Creates the layer (zeros until loaded).</summary>
    public ConstantLayer(ConstantOp op) : base(op) { RegisterDeclared(p => zeros(p.Shape)); }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => get_buffer("value")!.alias();
}
