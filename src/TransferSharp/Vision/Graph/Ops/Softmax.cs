namespace TransferSharp.Vision.Graph;

/// <summary>Softmax over one axis.</summary>
public sealed record SoftmaxOp(int Axis = -1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.softmax(xs[0], Axis));
}
