using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>LayerScale: a learnable per-channel factor, <c>gamma</c>, multiplying the last dimension (ViT's
/// <c>ls1.gamma</c>) or with <paramref name="ChannelsFirst"/> dimension 1 of an [N, C, …] map. The node is named so that
/// its parameter's key is the reference's (ConvNeXt's block-level <c>stages.0.blocks.0.gamma</c>: the node is the block).</summary>
/// <param name="Channels">Number of channels scaled.</param>
/// <param name="InitValue">gamma's value before loading or training (timm's <c>ls_init_value</c>, 1e-6 in ConvNeXt).</param>
/// <param name="ChannelsFirst">Scale dimension 1 instead of the last.</param>
public sealed record LayerScaleOp(int Channels, double InitValue = 1e-5, bool ChannelsFirst = false) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (ChannelsFirst ? x.Length < 2 || x[1] != Channels : x.Length < 1 || x[^1] != Channels)
            throw Bad($"LayerScale expects {Channels} values on dimension {(ChannelsFirst ? "1" : "-1")}, got shape [{string.Join(",", x)}]");
        return x;
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new("gamma", [Channels])];

    /// <summary>The gamma shape that broadcasts against an input of <paramref name="rank"/> dimensions.</summary>
    internal long[] BroadcastShape(int rank) =>
        ChannelsFirst ? new long[] { Channels }.Concat(Enumerable.Repeat(1L, Math.Max(rank - 2, 0))).ToArray() : [Channels];

    /// <summary>A Mul by gamma as a constant of the broadcast shape .</summary>
    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        using var gamma = onnx.Parameter("gamma").reshape(BroadcastShape(onnx.InputShapes[0].Length));
        onnx.Out("Mul", [onnx.Inputs[0], onnx.Initializer(onnx.Node.Name + ".gamma", gamma)]);
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new LayerScaleLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Channels}" + (ChannelsFirst ? ", channels first" : "");
}

/// <summary>LayerScale's per-channel multiply.</summary>
public sealed class LayerScaleLayer : Layer
{
    private readonly LayerScaleOp _op;

    /// <summary>Creates the layer.</summary>
    public LayerScaleLayer(LayerScaleOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => full(p.Shape, op.InitValue));
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var gamma = get_parameter("gamma")!;
        if (!_op.ChannelsFirst) return inputs[0] * gamma;
        using var shaped = gamma.reshape(_op.BroadcastShape((int)inputs[0].dim()));
        return inputs[0] * shaped;
    }
}
