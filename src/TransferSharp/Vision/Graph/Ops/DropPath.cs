using System.Globalization;
using TransferSharp.Runtime;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>Stochastic depth (timm's <c>DropPath</c>, "row" mode): in training, each sample's whole branch is dropped with
/// probability <paramref name="P"/> and the kept ones are scaled by 1/(1 − P); the identity in eval mode.</summary>
public sealed record DropPathOp(double P) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        if (P is < 0 or >= 1) throw Bad($"DropPath probability {P.ToString(CultureInfo.InvariantCulture)} is outside [0, 1)");
        return inputs[0];
    }

    /// <summary>Exported with eval semantics: the identity.</summary>
    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Identity", onnx.Inputs);

    /// <inheritdoc />
    public override Layer CreateLayer() => new DropPathLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"p={P.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Stochastic depth, active only in training mode, its per-sample masks drawn from the module's generator.</summary>
public sealed class DropPathLayer : Layer, ISeededMaskLayer
{
    private readonly DropPathOp _op;

    /// <summary>Creates the layer.</summary>
    public DropPathLayer(DropPathOp op) : base(op) { _op = op; }

    private Generator? _generator;

    Generator? ISeededMaskLayer.Generator { get => _generator; set => _generator = value; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        if (!training || _op.P <= 0) return inputs[0].alias();
        return SeededDropout.ApplyPerSample(inputs[0], _op.P, _generator ?? throw new InvalidOperationException("a drop-path layer runs in training mode without its module's generator"));
    }
}
