namespace TransferSharp.Vision.Graph;

/// <summary>Adaptive average pooling to a fixed output size (torchvision VGG's 7×7).</summary>
public sealed record AdaptiveAvgPool2dOp(int OutH, int OutW) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 4, Kind);
        return [x[0], x[1], OutH, OutW];
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
        TorchSharp.torch.nn.functional.adaptive_avg_pool2d(xs[0], [OutH, OutW]));

    /// <inheritdoc />
    public override string Describe() => $"{OutH}×{OutW}";
}
