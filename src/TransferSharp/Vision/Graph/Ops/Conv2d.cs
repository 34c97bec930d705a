using TorchSharp.Modules;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>2-D convolution, PyTorch semantics (weight [out, in/groups, kh, kw]); optionally with
/// weight standardisation (BiT's StdConv2d: weight normalised per output channel with eps).</summary>
public sealed record Conv2dOp(int InChannels, int OutChannels, Size2 Kernel, Size2 Stride, PadSpec Padding, Size2 Dilation,
    int Groups = 1, bool Bias = true, double? WeightStandardizationEps = null) : Op
{
    /// <inheritdoc />
    public override string Kind => WeightStandardizationEps is null ? "Conv2d" : "StdConv2d";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 4, Kind);
        if (x[1] != InChannels) throw Bad($"{Kind} expects {InChannels} input channels, got {x[1]}");
        var (t, l, b, r) = Padding.Resolve(x[2], x[3], Kernel, Stride, Dilation);
        long h = WindowOut(x[2], Kernel.H, Stride.H, t, b, Dilation.H, false);
        long w = WindowOut(x[3], Kernel.W, Stride.W, l, r, Dilation.W, false);
        if (h <= 0 || w <= 0) throw Bad($"{Kind}: input {x[2]}×{x[3]} is too small for kernel {Kernel}, stride {Stride}");
        return [x[0], OutChannels, h, w];
    }

    internal static long WindowOut(long size, int k, int s, int padBegin, int padEnd, int d, bool ceil)
    {
        if (k < 1 || s < 1 || d < 1)
            throw new GraphException($"kernel {k}, stride {s} and dilation {d} must each be at least 1");
        long span = size + padBegin + padEnd - (long)d * (k - 1) - 1;
        if (span < 0) return 0;
        long o = ceil ? (span + s - 1) / s + 1 : span / s + 1;
        // PyTorch's ceil_mode rule: the last window must start inside the input or the leading padding.
        if (ceil && (o - 1) * s >= size + padBegin) o--;
        return o;
    }

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) =>
        Numel(output) * (InChannels / Groups) * Kernel.H * Kernel.W;

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes =>
        Bias ? [new("weight", [OutChannels, InChannels / Groups, Kernel.H, Kernel.W]), new("bias", [OutChannels])]
             : [new("weight", [OutChannels, InChannels / Groups, Kernel.H, Kernel.W])];

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        Tensor w = onnx.Parameter("weight");
        string weight;
        if (WeightStandardizationEps is double eps)
        {
            // StdConv2d's standardisation depends on the weight alone: the exported weight has it folded in.
            var (var, mean) = var_mean(w, [1, 2, 3], unbiased: false, keepdim: true);
            weight = onnx.Initializer(name + ".weight", (w - mean) / (var + eps).sqrt());
        }
        else weight = onnx.Initializer(name + ".weight", w);
        string[] inputs = Bias ? [onnx.Inputs[0], weight, onnx.Initializer(name + ".bias", onnx.Parameter("bias"))] : [onnx.Inputs[0], weight];
        onnx.Out("Conv", inputs, Attr("kernel_shape", [Kernel.H, Kernel.W]), Attr("strides", [Stride.H, Stride.W]),
            Attr("dilations", [Dilation.H, Dilation.W]), Attr("group", Groups), OnnxExportContext.Window(Padding));
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Conv", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        var w = onnx.Constant(1, "weight");
        if (w.Shape.Length != 4 || x.Shape.Length != 4) throw onnx.Unsupported($"{w.Shape.Length - 2}-D convolution; only 2-D is supported");
        var kernel = onnx.Pair(onnx.Ints("kernel_shape") ?? w.Shape[2..], 1, "kernel_shape");
        if (kernel.H != w.Shape[2] || kernel.W != w.Shape[3]) throw onnx.Malformed($"kernel_shape {kernel} differs from the weight's [{string.Join(",", w.Shape)}]");
        int groups = (int)onnx.Int("group", 1);
        if (w.Shape[1] * groups != x.Shape[1])
            throw onnx.Malformed($"weight [{string.Join(",", w.Shape)}] with group {groups} does not take {x.Shape[1]} input channels");
        var bias = onnx.OptionalConstant(2, "bias");
        var name = onnx.NodeName(1);
        var op = new Conv2dOp((int)x.Shape[1], (int)w.Shape[0], kernel, onnx.Pair(onnx.Ints("strides"), 1, "strides"), onnx.Padding(2),
            onnx.Pair(onnx.Ints("dilations"), 1, "dilations"), groups, bias is not null);
        onnx.Emit(bias is null ? onnx.AddWithState(op, name, x, ("weight", w))
            : onnx.AddWithState(op, name, x, ("weight", w), ("bias", new ConstTensor([w.Shape[0]], bias.AsFloats()))));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new ConvLayer(this);

    /// <inheritdoc />
    public override string Describe() =>
        $"{InChannels}→{OutChannels}, k={Kernel}, s={Stride}, p={Padding}" + (Dilation != new Size2(1, 1) ? $", d={Dilation}" : "")
        + (Groups != 1 ? $", g={Groups}" : "") + (Bias ? "" : ", no bias");
}

/// <summary>Convolution with PyTorch's names; asymmetric or "same" padding is applied explicitly.</summary>
public sealed class ConvLayer : Layer
{
    private readonly Conv2dOp _op;

    /// <summary>Creates the layer (uninitialised until <see cref="GraphModule"/> draws it: Kaiming-normal fan-out weights,
    /// zero bias).</summary>
    public ConvLayer(Conv2dOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => empty(p.Shape));
    }

    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        double fanOut = (double)_op.OutChannels * _op.Kernel.H * _op.Kernel.W / _op.Groups;
        Weight.normal_(0, Math.Sqrt(2.0 / fanOut), generator);
        Bias?.zero_();
    }

    /// <summary>The kernel.</summary>
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => _op.Bias ? get_parameter("bias") : null;

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var x = inputs[0];
        using var scope = NewDisposeScope();
        var (t, l, b, r) = _op.Padding.Resolve(x.shape[2], x.shape[3], _op.Kernel, _op.Stride, _op.Dilation);
        Tensor w = Weight;
        if (_op.WeightStandardizationEps is double eps)
        {
            var (var, mean) = var_mean(w, [1, 2, 3], unbiased: false, keepdim: true);
            w = (w - mean) / (var + eps).sqrt();
        }
        long[] padding;
        if (t == b && l == r) padding = [t, l];
        else
        {
            x = F.pad(x, [l, r, t, b]);
            padding = [0, 0];
        }
        var y = F.conv2d(x, w, Bias, _op.Stride.ToArray(), padding, _op.Dilation.ToArray(), _op.Groups);
        return y.MoveToOuterDisposeScope();
    }
}
