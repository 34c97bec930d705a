using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Softmax over one axis.</summary>
public sealed record SoftmaxOp(int Axis = -1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Softmax", [onnx.Inputs[0]], Attr("axis", Axis));

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.softmax(xs[0], Axis));
}
