using System.Globalization;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>Element-wise activations.</summary>
public enum ActivationKind
{
    /// <summary>max(x, 0)</summary>
    Relu,
    /// <summary>min(max(x, 0), 6)</summary>
    Relu6,
    /// <summary>x if x ≥ 0 else alpha·x</summary>
    LeakyRelu,
    /// <summary>1 / (1 + e^-x)</summary>
    Sigmoid,
    /// <summary>tanh(x)</summary>
    Tanh,
    /// <summary>max(0, min(1, alpha·x + beta)) (ONNX HardSigmoid); PyTorch's <c>nn.Hardsigmoid</c>, relu6(x + 3) / 6, is
    /// alpha 1/6, beta 0.5: <see cref="ActivationOp.TorchHardSigmoid"/>.</summary>
    HardSigmoid,
    /// <summary>x · relu6(x + 3) / 6</summary>
    HardSwish,
    /// <summary>x · sigmoid(x)</summary>
    Silu,
    /// <summary>Gaussian error linear unit (exact): 0.5·x·(1 + erf(x/√2))</summary>
    Gelu,
    /// <summary>GELU's tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</summary>
    GeluTanh,
    /// <summary>min(max(x, alpha), beta)</summary>
    Clip,
    /// <summary>x if x > 0 else alpha·(e^x − 1)</summary>
    Elu,
}

/// <summary>An element-wise activation; Alpha/Beta are used by LeakyRelu, HardSigmoid, Clip and Elu.</summary>
public sealed record ActivationOp(ActivationKind Activation, double Alpha = 0, double Beta = 0) : Op
{
    /// <inheritdoc />
    public override string Kind => Activation.ToString();

    /// <summary>PyTorch's <c>nn.Hardsigmoid</c> (relu6(x + 3) / 6), computed by LibTorch's own kernel.</summary>
    public static ActivationOp TorchHardSigmoid { get; } = new(ActivationKind.HardSigmoid, 1.0 / 6, 0.5);

    /// <summary>True for PyTorch's hardsigmoid constants.</summary>
    // Within float rounding of 1/6, so an imported ONNX HardSigmoid (alpha stored as a float) counts too.
    internal bool IsTorchHardSigmoid => Activation == ActivationKind.HardSigmoid && Math.Abs(Alpha - 1.0 / 6) < 1e-7 && Beta == 0.5;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var x = onnx.Inputs[0];
        switch (Activation)
        {
            case ActivationKind.Relu: onnx.Out("Relu", [x]); break;
            case ActivationKind.Relu6: onnx.Out("Clip", [x, onnx.Scalar(name + ".min", 0), onnx.Scalar(name + ".max", 6)]); break;
            case ActivationKind.Clip:
                onnx.Out("Clip", [x, onnx.Scalar(name + ".min", Math.Max(Alpha, float.MinValue)), onnx.Scalar(name + ".max", Math.Min(Beta, float.MaxValue))]);
                break;
            case ActivationKind.LeakyRelu: onnx.Out("LeakyRelu", [x], Attr("alpha", Alpha)); break;
            case ActivationKind.Sigmoid: onnx.Out("Sigmoid", [x]); break;
            case ActivationKind.Tanh: onnx.Out("Tanh", [x]); break;
            case ActivationKind.Elu: onnx.Out("Elu", [x], Attr("alpha", Alpha)); break;
            case ActivationKind.HardSigmoid: onnx.Out("HardSigmoid", [x], Attr("alpha", Alpha), Attr("beta", Beta)); break;
            case ActivationKind.HardSwish:
                if (onnx.Opset >= 14) onnx.Out("HardSwish", [x]);
                else onnx.Out("Mul", [x, onnx.Emit("HardSigmoid", [x], onnx.Fresh(name + "_hsig"), Attr("alpha", 1.0 / 6), Attr("beta", 0.5))]);
                break;
            case ActivationKind.Silu: onnx.Out("Mul", [x, onnx.Emit("Sigmoid", [x], onnx.Fresh(name + "_sigmoid"))]); break;
            case ActivationKind.GeluTanh:
                if (onnx.Opset >= 20) onnx.Out("Gelu", [x], Attr("approximate", "tanh"));
                else
                {
                    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                    var cube = onnx.Emit("Mul", [x, onnx.Emit("Mul", [x, x], onnx.Fresh(name + "_sq"))], onnx.Fresh(name + "_cube"));
                    var inner = onnx.Emit("Add", [x, onnx.Emit("Mul", [cube, onnx.Scalar(name + ".k", 0.044715)], onnx.Fresh(name + "_kcube"))], onnx.Fresh(name + "_inner"));
                    var th = onnx.Emit("Tanh", [onnx.Emit("Mul", [inner, onnx.Scalar(name + ".sqrt2pi", Math.Sqrt(2 / Math.PI))], onnx.Fresh(name + "_scaled"))], onnx.Fresh(name + "_tanh"));
                    var plus = onnx.Emit("Add", [th, onnx.Scalar(name + ".one", 1)], onnx.Fresh(name + "_plus"));
                    var half = onnx.Emit("Mul", [x, onnx.Scalar(name + ".half", 0.5)], onnx.Fresh(name + "_half"));
                    onnx.Out("Mul", [half, plus]);
                }
                break;
            case ActivationKind.Gelu:
                if (onnx.Opset >= 20) onnx.Out("Gelu", [x]);
                else
                {
                    // 0.5·x·(1 + erf(x/√2)), with a division by √2 as PyTorch exports it: the pattern ONNX Runtime fuses
                    // into one Gelu kernel (and with the bias before it into BiasGelu); a multiplication by 1/√2 is not.
                    var scaled = onnx.Emit("Div", [x, onnx.Scalar(name + ".sqrt2", Math.Sqrt(2))], onnx.Fresh(name + "_scaled"));
                    var erf = onnx.Emit("Erf", [scaled], onnx.Fresh(name + "_erf"));
                    var plus = onnx.Emit("Add", [erf, onnx.Scalar(name + ".one", 1)], onnx.Fresh(name + "_plus"));
                    var half = onnx.Emit("Mul", [x, onnx.Scalar(name + ".half", 0.5)], onnx.Fresh(name + "_half"));
                    onnx.Out("Mul", [half, plus]);
                }
                break;
            default: throw new NotSupportedException($"activation {Activation}");
        }
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
    [
        ("Relu", onnx => onnx.Out(new ActivationOp(ActivationKind.Relu))),
        ("LeakyRelu", onnx => onnx.Out(new ActivationOp(ActivationKind.LeakyRelu, onnx.Float("alpha", 0.01f)))),
        ("Elu", onnx => onnx.Out(new ActivationOp(ActivationKind.Elu, onnx.Float("alpha", 1f)))),
        ("Sigmoid", onnx => onnx.Out(new ActivationOp(ActivationKind.Sigmoid))),
        ("Tanh", onnx => onnx.Out(new ActivationOp(ActivationKind.Tanh))),
        ("HardSigmoid", onnx => onnx.Out(new ActivationOp(ActivationKind.HardSigmoid, onnx.Float("alpha", 0.2f), onnx.Float("beta", 0.5f)))),
        ("HardSwish", onnx => onnx.Out(new ActivationOp(ActivationKind.HardSwish))),
        ("Clip", ImportClip),
        ("Gelu", ImportGelu),
    ];

    private static void ImportClip(OnnxImportContext onnx)
    {
        double lo, hi;
        if (onnx.Opset < 11)
        {
            lo = onnx.Float("min", float.MinValue);
            hi = onnx.Float("max", float.MaxValue);
        }
        else
        {
            lo = onnx.OptionalConstant(1, "min") is { } a ? a[0] : float.MinValue;
            hi = onnx.OptionalConstant(2, "max") is { } b ? b[0] : float.MaxValue;
        }
        onnx.Out(lo == 0 && hi == 6 ? new ActivationOp(ActivationKind.Relu6) : new ActivationOp(ActivationKind.Clip, lo, hi));
    }

    private static void ImportGelu(OnnxImportContext onnx)
    {
        onnx.Out((onnx.String("approximate") ?? "none") switch
        {
            "none" => new ActivationOp(ActivationKind.Gelu),
            "tanh" => new ActivationOp(ActivationKind.GeluTanh),
            var other => throw onnx.Malformed($"Gelu approximate=\"{other}\" (ONNX defines \"none\" and \"tanh\")"),
        });
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new ActivationLayer(this);

    /// <inheritdoc />
    public override string Describe() => Activation switch
    {
        ActivationKind.LeakyRelu or ActivationKind.Elu => $"alpha={Alpha.ToString(CultureInfo.InvariantCulture)}",
        ActivationKind.Clip => $"[{Alpha.ToString(CultureInfo.InvariantCulture)}, {Beta.ToString(CultureInfo.InvariantCulture)}]",
        ActivationKind.HardSigmoid => $"alpha={Alpha.ToString(CultureInfo.InvariantCulture)}, beta={Beta.ToString(CultureInfo.InvariantCulture)}",
        _ => "",
    };
}

/// <summary>Element-wise activations.</summary>
public sealed class ActivationLayer : Layer
{
    private readonly ActivationOp _op;

    /// <summary>Creates the layer.</summary>
    public ActivationLayer(ActivationOp op) : base(op) { _op = op; }

    /// <inheritdoc />
    public override bool CanRunInPlace => _op.Activation is ActivationKind.Relu or ActivationKind.Relu6 or ActivationKind.LeakyRelu
        or ActivationKind.Clip or ActivationKind.HardSwish or ActivationKind.Silu or ActivationKind.Sigmoid || _op.IsTorchHardSigmoid;

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => Apply(inputs[0], false);

    /// <inheritdoc />
    public override Tensor ForwardInPlace(IReadOnlyList<Tensor> inputs, int target) => Apply(inputs[0], true);

    private Tensor Apply(Tensor x, bool inPlace)
    {
        var a = _op.Alpha;
        var b = _op.Beta;
        return _op.Activation switch
        {
            ActivationKind.Relu => inPlace ? x.relu_().alias() : x.relu(),
            ActivationKind.Relu6 => F.relu6(x, inPlace).Alias(inPlace),
            ActivationKind.LeakyRelu => F.leaky_relu(x, a, inPlace).Alias(inPlace),
            ActivationKind.Sigmoid => inPlace ? x.sigmoid_().alias() : x.sigmoid(),
            ActivationKind.Tanh => x.tanh(),
            ActivationKind.HardSigmoid when _op.IsTorchHardSigmoid => F.hardsigmoid(x, inPlace).Alias(inPlace),
            ActivationKind.HardSigmoid => HardSigmoid(x, a, b),
            ActivationKind.HardSwish => F.hardswish(x, inPlace).Alias(inPlace),
            ActivationKind.Silu => F.silu(x, inPlace).Alias(inPlace),
            ActivationKind.Gelu => F.gelu(x),
            ActivationKind.GeluTanh => F.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
            ActivationKind.Clip => inPlace ? x.clamp_(a, b).alias() : x.clamp(a, b),
            ActivationKind.Elu => F.elu(x, a),
            _ => throw new NotSupportedException(_op.Activation.ToString()),
        };
    }

    private static Tensor HardSigmoid(Tensor x, double alpha, double beta)
    {
        using var scaled = x * alpha;
        using var shifted = scaled + beta;
        return shifted.clamp(0.0, 1.0);
    }
}

internal static class InPlaceExtensions
{
    /// <summary>In-place TorchSharp ops return the input handle; the interpreter needs a new one.</summary>
    public static Tensor Alias(this Tensor t, bool inPlace) => inPlace ? t.alias() : t;
}
