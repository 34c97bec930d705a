namespace TransferSharp.Vision.Graph;

/// <summary>Passes its input through.</summary>
public sealed record IdentityOp : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Identity", onnx.Inputs);

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].alias());
}
