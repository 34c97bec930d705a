using TorchSharp;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>Max or average.</summary>
public enum PoolKind
{
    /// <summary>Maximum over the window.</summary>
    Max,
    /// <summary>Mean over the window.</summary>
    Avg,
}

/// <summary>2-D max or average pooling. Padded positions never win a max; for average pooling
/// <see cref="CountIncludePad"/> says whether they count in the divisor (as in PyTorch and ONNX).</summary>
public sealed record Pool2dOp(PoolKind Pool, Size2 Kernel, Size2 Stride, PadSpec Padding, bool CeilMode = false,
    bool CountIncludePad = true, Size2 Dilation = default) : Op
{
    /// <summary>Dilation, 1 when unset.</summary>
    public Size2 EffectiveDilation => Dilation == default ? new Size2(1, 1) : Dilation;

    /// <inheritdoc />
    public override string Kind => Pool == PoolKind.Max ? "MaxPool2d" : "AvgPool2d";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 4, Kind);
        var d = EffectiveDilation;
        var (t, l, b, r) = Padding.Resolve(x[2], x[3], Kernel, Stride, d);
        long h = Conv2dOp.WindowOut(x[2], Kernel.H, Stride.H, t, b, d.H, CeilMode);
        long w = Conv2dOp.WindowOut(x[3], Kernel.W, Stride.W, l, r, d.W, CeilMode);
        if (h <= 0 || w <= 0) throw Bad($"{Kind}: input {x[2]}×{x[3]} is too small for kernel {Kernel}");
        return [x[0], x[1], h, w];
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        if (Pool == PoolKind.Max && TryExportPaddedMaxPool(onnx)) return;
        var attrs = new List<OnnxAttribute>
        {
            Attr("kernel_shape", [Kernel.H, Kernel.W]), Attr("strides", [Stride.H, Stride.W]), Attr("ceil_mode", CeilMode ? 1 : 0),
            OnnxExportContext.Window(Padding),
        };
        if (Pool == PoolKind.Max)
        {
            var d = EffectiveDilation;
            if (d != new Size2(1, 1)) attrs.Add(Attr("dilations", [d.H, d.W]));
            onnx.Out("MaxPool", [onnx.Inputs[0]], [.. attrs]);
        }
        else
        {
            attrs.Add(Attr("count_include_pad", CountIncludePad ? 1 : 0));
            onnx.Out("AveragePool", [onnx.Inputs[0]], [.. attrs]);
        }
    }

    /// <summary>
    /// A constant Pad feeding a MaxPool (timm's BiT stem: zero pad, then an unpadded max pool). ONNX
    /// Runtime's PadFusion folds such a Pad into the pool's own padding, which pads with −∞, not the
    /// pad value, and changes the result wherever a window holds only padding and negative values.
    /// Written instead as MaxPool over the unpadded input with the combined padding, then Max with a
    /// constant holding the pad value for windows that touch the padded ring (−∞ elsewhere): the same
    /// numbers, and nothing for the optimizer to fuse.
    /// </summary>
    private bool TryExportPaddedMaxPool(OnnxExportContext onnx)
    {
        var node = onnx.Node;
        var graph = onnx.Graph;
        var padName = node.Inputs[0];
        if (padName == ModelGraph.InputName || graph.Node(padName).Op is not PadOp { Mode: "constant" } pad) return false;
        if (Padding.Kind != PadKind.Explicit || EffectiveDilation != new Size2(1, 1)) return false;
        var src = graph.Node(padName).Inputs[0];
        var srcShape = graph.Shapes[src];
        long h = srcShape[2], w = srcShape[3];
        int top = pad.Top + Padding.Top, left = pad.Left + Padding.Left;
        int bottom = pad.Bottom + Padding.Bottom, right = pad.Right + Padding.Right;
        if (new[] { pad.Top, pad.Left, pad.Bottom, pad.Right }.Any(v => v < 0)) return false;
        long oh = onnx.OutputShape[2], ow = onnx.OutputShape[3];
        var border = new float[oh * ow];
        for (long i = 0; i < oh; i++)
        {
            for (long j = 0; j < ow; j++)
            {
                bool touches = false;
                for (long r = i * Stride.H - top; r < i * Stride.H - top + Kernel.H && !touches; r++)
                {
                    for (long c = j * Stride.W - left; c < j * Stride.W - left + Kernel.W && !touches; c++)
                    {
                        bool inPadded = r >= -pad.Top && r < h + pad.Bottom && c >= -pad.Left && c < w + pad.Right;
                        bool inInput = r >= 0 && r < h && c >= 0 && c < w;
                        touches = inPadded && !inInput;
                    }
                }
                border[i * ow + j] = touches ? (float)pad.Value : float.NegativeInfinity;
            }
        }
        var pooled = onnx.Emit("MaxPool", [onnx.ValueOf(src)], onnx.Fresh(node.Name + "_unpadded"), Attr("kernel_shape", [Kernel.H, Kernel.W]),
            Attr("strides", [Stride.H, Stride.W]), Attr("pads", [top, left, bottom, right]), Attr("ceil_mode", CeilMode ? 1 : 0));
        onnx.SetOutput(onnx.Emit("Max", [pooled, onnx.Floats(node.Name + ".border", [1, 1, oh, ow], border)], onnx.Fresh(node.Name)));
        return true;
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
        [("MaxPool", onnx => ImportOnnx(onnx, PoolKind.Max)), ("AveragePool", onnx => ImportOnnx(onnx, PoolKind.Avg))];

    private static void ImportOnnx(OnnxImportContext onnx, PoolKind kind)
    {
        var x = onnx.Value(0);
        onnx.RequireUnusedOutputs(1);
        if (x.Shape.Length != 4) throw onnx.Unsupported("only 2-D pooling is supported");
        var kernel = onnx.Pair(onnx.Ints("kernel_shape") ?? throw onnx.Malformed("kernel_shape is missing"), 1, "kernel_shape");
        var stride = onnx.Pair(onnx.Ints("strides"), 1, "strides");
        var dilation = onnx.Pair(onnx.Ints("dilations"), 1, "dilations");
        bool ceil = onnx.Int("ceil_mode", 0) != 0;
        bool includePad = onnx.Int("count_include_pad", 0) != 0;
        if (kind == PoolKind.Avg && dilation != new Size2(1, 1)) throw onnx.Unsupported("dilated average pooling");
        var op = new Pool2dOp(kind, kernel, stride, onnx.Padding(2), ceil, includePad, dilation);
        onnx.Emit(onnx.Add(op, onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new PoolLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"k={Kernel}, s={Stride}, p={Padding}" + (CeilMode ? ", ceil" : "")
        + (Pool == PoolKind.Avg && !CountIncludePad ? ", exclude pad" : "");
}

/// <summary>Max and average pooling, including asymmetric and "same" padding.</summary>
public sealed class PoolLayer : Layer
{
    private readonly Pool2dOp _op;

    /// <summary>Creates the layer.</summary>
    public PoolLayer(Pool2dOp op) : base(op) { _op = op; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var x = inputs[0];
        var k = _op.Kernel;
        var d = _op.EffectiveDilation;
        var (t, l, b, r) = _op.Padding.Resolve(x.shape[2], x.shape[3], k, _op.Stride, d);
        // PyTorch pools take symmetric padding up to half the kernel; anything else is padded here.
        bool native = t == b && l == r && t <= k.H / 2 && l <= k.W / 2;
        using var scope = NewDisposeScope();
        Tensor y;
        if (_op.Pool == PoolKind.Max)
        {
            if (!native)
            {
                x = F.pad(x, [l, r, t, b], PaddingModes.Constant, double.NegativeInfinity);
                t = l = 0;
            }
            y = F.max_pool2d(x, k.ToArray(), _op.Stride.ToArray(), [t, l], d.ToArray(), _op.CeilMode);
        }
        else if (native)
        {
            y = F.avg_pool2d(x, k.ToArray(), _op.Stride.ToArray(), [t, l], _op.CeilMode, _op.CountIncludePad);
        }
        else
        {
            var padded = F.pad(x, [l, r, t, b]);
            var sums = F.avg_pool2d(padded, k.ToArray(), _op.Stride.ToArray(), [0, 0], _op.CeilMode, true);
            if (_op.CountIncludePad) y = sums;
            else
            {
                // Divide by the number of real (unpadded) elements under each window.
                var mask = F.pad(ones(1, 1, x.shape[2], x.shape[3], dtype: x.dtype, device: x.device), [l, r, t, b]);
                var counts = F.avg_pool2d(mask, k.ToArray(), _op.Stride.ToArray(), [0, 0], _op.CeilMode, true);
                y = sums / counts;
            }
        }
        return y.MoveToOuterDisposeScope();
    }
}
