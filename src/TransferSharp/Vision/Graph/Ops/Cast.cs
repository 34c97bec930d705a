namespace TransferSharp.Vision.Graph;

/// <summary>Converts a tensor to another element type (ONNX Cast): a text encoder's int64 attention mask becomes the
/// float32 it is computed with.</summary>
public sealed record CastOp(ElementType To) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <summary>The ONNX data type of <paramref name="type"/>.</summary>
    internal static long OnnxType(ElementType type) => type == ElementType.Int64 ? 7 : 1;

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Cast", onnx.Inputs, OnnxAttribute.Attr("to", OnnxType(To)));

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
        xs[0].to_type(To == ElementType.Int64 ? TorchSharp.torch.ScalarType.Int64 : TorchSharp.torch.ScalarType.Float32));

    /// <inheritdoc />
    public override string Describe() => To.ToString();
}
