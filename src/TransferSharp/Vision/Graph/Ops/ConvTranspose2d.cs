using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>2-D transposed convolution (weight [in, out/groups, kh, kw]).</summary>
public sealed record ConvTranspose2dOp(int InChannels, int OutChannels, Size2 Kernel, Size2 Stride, PadSpec Padding, Size2 OutputPadding,
    Size2 Dilation, int Groups = 1, bool Bias = true) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 4, Kind);
        if (x[1] != InChannels) throw Bad($"ConvTranspose2d expects {InChannels} input channels, got {x[1]}");
        if (Padding.Kind != PadKind.Explicit) throw Bad("ConvTranspose2d supports explicit padding only");
        long h = (x[2] - 1) * Stride.H - Padding.Top - Padding.Bottom + Dilation.H * (Kernel.H - 1) + OutputPadding.H + 1;
        long w = (x[3] - 1) * Stride.W - Padding.Left - Padding.Right + Dilation.W * (Kernel.W - 1) + OutputPadding.W + 1;
        return [x[0], OutChannels, h, w];
    }

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) =>
        Numel(inputs[0]) * (OutChannels / Groups) * Kernel.H * Kernel.W;

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes =>
        Bias ? [new("weight", [InChannels, OutChannels / Groups, Kernel.H, Kernel.W]), new("bias", [OutChannels])]
             : [new("weight", [InChannels, OutChannels / Groups, Kernel.H, Kernel.W])];

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var weight = onnx.Initializer(name + ".weight", onnx.Parameter("weight"));
        string[] inputs = Bias ? [onnx.Inputs[0], weight, onnx.Initializer(name + ".bias", onnx.Parameter("bias"))] : [onnx.Inputs[0], weight];
        onnx.Out("ConvTranspose", inputs, Attr("kernel_shape", [Kernel.H, Kernel.W]), Attr("strides", [Stride.H, Stride.W]),
            Attr("dilations", [Dilation.H, Dilation.W]), Attr("group", Groups), Attr("pads", [Padding.Top, Padding.Left, Padding.Bottom, Padding.Right]),
            Attr("output_padding", [OutputPadding.H, OutputPadding.W]));
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("ConvTranspose", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        var w = onnx.Constant(1, "weight");
        if (w.Shape.Length != 4 || x.Shape.Length != 4) throw onnx.Unsupported("only 2-D transposed convolution is supported");
        if (onnx.HasAttribute("output_shape")) throw onnx.Unsupported("output_shape (give pads and output_padding instead)");
        if ((onnx.String("auto_pad") ?? "NOTSET") is not ("NOTSET" or "" or "VALID")) throw onnx.Unsupported("auto_pad SAME on ConvTranspose");
        int groups = (int)onnx.Int("group", 1);
        var bias = onnx.OptionalConstant(2, "bias");
        var name = onnx.NodeName(1);
        var op = new ConvTranspose2dOp((int)x.Shape[1], (int)w.Shape[1] * groups, onnx.Pair(onnx.Ints("kernel_shape") ?? w.Shape[2..], 1, "kernel_shape"),
            onnx.Pair(onnx.Ints("strides"), 1, "strides"), onnx.Padding(2), onnx.Pair(onnx.Ints("output_padding"), 0, "output_padding"),
            onnx.Pair(onnx.Ints("dilations"), 1, "dilations"), groups, bias is not null);
        onnx.Emit(bias is null ? onnx.AddWithState(op, name, x, ("weight", w))
            : onnx.AddWithState(op, name, x, ("weight", w), ("bias", new ConstTensor([op.OutChannels], bias.AsFloats()))));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new ConvTransposeLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{InChannels}→{OutChannels}, k={Kernel}, s={Stride}, p={Padding}";
}

/// <summary>Transposed convolution.</summary>
public sealed class ConvTransposeLayer : Layer
{
    private readonly ConvTranspose2dOp _op;

    /// <summary>Creates the layer (uninitialised until <see cref="GraphModule"/> draws it).</summary>
    public ConvTransposeLayer(ConvTranspose2dOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => empty(p.Shape));
    }

    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        get_parameter("weight")!.normal_(0, Math.Sqrt(2.0 / ((double)_op.InChannels * _op.Kernel.H * _op.Kernel.W)), generator);
        if (_op.Bias) get_parameter("bias")!.zero_();
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var p = _op.Padding;
        using var scope = NewDisposeScope();
        // Asymmetric padding: run with the smaller side and crop the rest.
        long ph = Math.Min(p.Top, p.Bottom), pw = Math.Min(p.Left, p.Right);
        var y = F.conv_transpose2d(inputs[0], get_parameter("weight")!, _op.Bias ? get_parameter("bias") : null,
            _op.Stride.ToArray(), [ph, pw], _op.OutputPadding.ToArray(), _op.Dilation.ToArray(), _op.Groups);
        long cropTop = p.Top - ph, cropBottom = p.Bottom - ph, cropLeft = p.Left - pw, cropRight = p.Right - pw;
        if (cropTop + cropBottom + cropLeft + cropRight > 0)
            y = y[.., .., TensorIndex.Slice(cropTop, y.shape[2] - cropBottom), TensorIndex.Slice(cropLeft, y.shape[3] - cropRight)];
        return y.MoveToOuterDisposeScope();
    }
}
