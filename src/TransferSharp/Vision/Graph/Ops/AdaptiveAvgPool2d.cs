using static TransferSharp.Vision.Graph.OnnxAttribute;

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

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var s = onnx.InputShapes[0];
        if (OutH == 1 && OutW == 1) { onnx.Out("GlobalAveragePool", [onnx.Inputs[0]]); return; }
        if (s[2] % OutH != 0 || s[3] % OutW != 0)
            throw new NotSupportedException($"adaptive pooling from {s[2]}×{s[3]} to {OutH}×{OutW} has uneven windows");
        long kh = s[2] / OutH, kw = s[3] / OutW;
        if (kh == 1 && kw == 1) { onnx.Out("Identity", [onnx.Inputs[0]]); return; }
        onnx.Out("AveragePool", [onnx.Inputs[0]], Attr("kernel_shape", [kh, kw]), Attr("strides", [kh, kw]));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
        TorchSharp.torch.nn.functional.adaptive_avg_pool2d(xs[0], [OutH, OutW]));

    /// <inheritdoc />
    public override string Describe() => $"{OutH}×{OutW}";
}
