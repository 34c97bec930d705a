using System.Globalization;
using TransferSharp.Runtime;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>Dropout: active in training mode only.</summary>
public sealed record DropoutOp(double P) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <summary>Exported with eval semantics: the identity.</summary>
    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Identity", onnx.Inputs);

    /// <summary>The ONNX operators imported as this op (Dropout of a constant is the constant).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Dropout", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        onnx.RequireUnusedOutputs(1);
        double ratio = onnx.Opset < 12 ? onnx.Float("ratio", 0.5f) : onnx.OptionalConstant(1, "ratio") is { } r ? r[0] : 0.5;
        if (onnx.IsConstant(0)) { onnx.Alias(); return; }
        onnx.Out(new DropoutOp(ratio));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new DropoutLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"p={P.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Dropout, active only in training mode, its masks drawn from the module's generator.</summary>
public sealed class DropoutLayer : Layer, ISeededMaskLayer
{
    private readonly DropoutOp _op;

    /// <summary>Creates the layer.</summary>
    public DropoutLayer(DropoutOp op) : base(op) { _op = op; }

    private Generator? _generator;

    Generator? ISeededMaskLayer.Generator { get => _generator; set => _generator = value; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        if (!training || _op.P <= 0) return inputs[0].alias();
        return SeededDropout.Apply(inputs[0], _op.P, _generator ?? throw new InvalidOperationException("a dropout layer runs in training mode without its module's generator"));
    }
}

/// <summary>A layer that draws random masks in training mode from its module's generator (never LibTorch's global one).</summary>
internal interface ISeededMaskLayer
{
    /// <summary>Where training-mode masks come from (set by <see cref="GraphModule.Generator"/>).</summary>
    Generator? Generator { get; set; }
}
