using TorchSharp;
using TorchSharp.Modules;
using TransferSharp.Runtime;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// The executable form of an <see cref="Graph.Op"/>: a TorchSharp module whose parameters and buffers
/// carry PyTorch's names ("weight", "bias", "running_mean", …), so that a graph's state dict
/// equals its reference implementation's.
/// </summary>
public abstract class Layer : nn.Module
{
    /// <summary>Creates a layer for the given op.</summary>
    protected Layer(Op op) : base(op.Kind) { Op = op; }

    /// <summary>The op this layer executes.</summary>
    public Op Op { get; }

    /// <summary>Runs the op. Must return a new tensor handle (never one of its inputs).</summary>
    public abstract Tensor Forward(IReadOnlyList<Tensor> inputs);

    /// <summary>True when <see cref="ForwardInPlace"/> may overwrite one of its inputs (inference only).</summary>
    public virtual bool CanRunInPlace => false;

    /// <summary>True when the op is symmetric in its inputs, so any of them may be the one overwritten.</summary>
    public virtual bool Commutative => false;

    /// <summary>Runs the op writing its result into <c>inputs[target]</c>, which no one else reads
    /// and which already has the output's shape. Returns a new handle to that storage.</summary>
    public virtual Tensor ForwardInPlace(IReadOnlyList<Tensor> inputs, int target) => throw new NotSupportedException();

    internal static Parameter NewParameter(long[] shape) => new(empty(shape), requires_grad: true);

    /// <summary>Draws this layer's initial parameters from <paramref name="generator"/> (never from LibTorch's global
    /// generator, which belongs to the host). Layers without random parameters have nothing to draw.</summary>
    internal virtual void ResetParameters(Generator generator) { }

    /// <summary>Registers a child module (when another node's path nests under this one).</summary>
    internal void SetChild(string name, nn.Module child)
    {
        if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name);
        register_module(name, child);
    }

    internal void RemoveChild(string name) { if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name); }
}

/// <summary>Ops without parameters, as a function of the inputs.</summary>
public sealed class FunctionalLayer : Layer
{
    private readonly Func<IReadOnlyList<Tensor>, Tensor> _forward;

    /// <summary>Wraps a function.</summary>
    public FunctionalLayer(Op op, Func<IReadOnlyList<Tensor>, Tensor> forward) : base(op) { _forward = forward; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => _forward(inputs);
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
        register_parameter("weight", NewParameter([op.OutChannels, op.InChannels / op.Groups, op.Kernel.H, op.Kernel.W]));
        if (op.Bias) register_parameter("bias", NewParameter([op.OutChannels]));
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

/// <summary>Transposed convolution.</summary>
public sealed class ConvTransposeLayer : Layer
{
    private readonly ConvTranspose2dOp _op;

    /// <summary>Creates the layer (uninitialised until <see cref="GraphModule"/> draws it).</summary>
    public ConvTransposeLayer(ConvTranspose2dOp op) : base(op)
    {
        _op = op;
        register_parameter("weight", NewParameter([op.InChannels, op.OutChannels / op.Groups, op.Kernel.H, op.Kernel.W]));
        if (op.Bias) register_parameter("bias", NewParameter([op.OutChannels]));
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

/// <summary>Batch normalisation with PyTorch's parameters and buffers.</summary>
public sealed class BatchNormLayer : Layer
{
    private readonly BatchNormOp _op;

    /// <summary>Creates the layer (scale 1, shift 0, mean 0, variance 1).</summary>
    public BatchNormLayer(BatchNormOp op) : base(op)
    {
        _op = op;
        register_parameter("weight", new Parameter(ones(op.Features)));
        register_parameter("bias", new Parameter(zeros(op.Features)));
        register_buffer("running_mean", zeros(op.Features));
        register_buffer("running_var", ones(op.Features));
        register_buffer("num_batches_tracked", tensor(0L));
    }

    /// <summary>The op's epsilon.</summary>
    public double Eps => _op.Eps;

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var mean = get_buffer("running_mean")!;
        var var = get_buffer("running_var")!;
        if (training)
        {
            using (no_grad()) get_buffer("num_batches_tracked")!.add_(1);
        }
        return F.batch_norm(inputs[0], mean, var, get_parameter("weight"), get_parameter("bias"), training, _op.Momentum, _op.Eps);
    }
}

/// <summary>Group normalisation.</summary>
public sealed class GroupNormLayer : Layer
{
    private readonly GroupNormOp _op;

    /// <summary>Creates the layer.</summary>
    public GroupNormLayer(GroupNormOp op) : base(op)
    {
        _op = op;
        if (op.Affine)
        {
            register_parameter("weight", new Parameter(ones(op.Channels)));
            register_parameter("bias", new Parameter(zeros(op.Channels)));
        }
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) =>
        F.group_norm(inputs[0], _op.Groups, _op.Affine ? get_parameter("weight") : null, _op.Affine ? get_parameter("bias") : null, _op.Eps);
}

/// <summary>Fully connected layer with PyTorch's default initialisation.</summary>
public sealed class LinearLayer : Layer
{
    private readonly LinearOp _op;

    /// <summary>Creates the layer (uninitialised until <see cref="GraphModule"/> draws it).</summary>
    public LinearLayer(LinearOp op) : base(op)
    {
        _op = op;
        register_parameter("weight", NewParameter(op.WeightAs1x1Conv ? [op.OutFeatures, op.InFeatures, 1, 1] : [op.OutFeatures, op.InFeatures]));
        if (op.Bias) register_parameter("bias", NewParameter([op.OutFeatures]));
    }

    /// <summary>PyTorch's <c>Linear.reset_parameters</c>: Kaiming-uniform with a = √5 is uniform ±1/√fan_in, the bias's
    /// bound too.</summary>
    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        double bound = 1.0 / Math.Sqrt(_op.InFeatures);
        get_parameter("weight")!.uniform_(-bound, bound, generator);
        if (_op.Bias) get_parameter("bias")!.uniform_(-bound, bound, generator);
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var weight = get_parameter("weight")!;
        if (!_op.WeightAs1x1Conv) return F.linear(inputs[0], weight, _op.Bias ? get_parameter("bias") : null);
        using var matrix = weight.flatten(1);
        return F.linear(inputs[0], matrix, _op.Bias ? get_parameter("bias") : null);
    }
}

/// <summary>Element-wise activations.</summary>
public sealed class ActivationLayer : Layer
{
    private readonly ActivationOp _op;

    /// <summary>Creates the layer.</summary>
    public ActivationLayer(ActivationOp op) : base(op) { _op = op; }

    /// <inheritdoc />
    public override bool CanRunInPlace => _op.Activation is ActivationKind.Relu or ActivationKind.Relu6 or ActivationKind.LeakyRelu
        or ActivationKind.Clip or ActivationKind.HardSwish or ActivationKind.Silu or ActivationKind.Sigmoid;

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
            ActivationKind.HardSigmoid => HardSigmoid(x, a, b),
            ActivationKind.HardSwish => F.hardswish(x, inPlace).Alias(inPlace),
            ActivationKind.Silu => F.silu(x, inPlace).Alias(inPlace),
            ActivationKind.Gelu => F.gelu(x),
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

/// <summary>Dropout, active only in training mode, its masks drawn from the module's generator.</summary>
public sealed class DropoutLayer : Layer
{
    private readonly DropoutOp _op;

    /// <summary>Creates the layer.</summary>
    public DropoutLayer(DropoutOp op) : base(op) { _op = op; }

    /// <summary>Where training-mode masks come from (set by <see cref="GraphModule.Generator"/>).</summary>
    internal Generator? Generator { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        if (!training || _op.P <= 0) return inputs[0].alias();
        return SeededDropout.Apply(inputs[0], _op.P, Generator ?? throw new InvalidOperationException("a dropout layer runs in training mode without its module's generator"));
    }
}

/// <summary>A constant tensor held as a buffer named "value".</summary>
public sealed class ConstantLayer : Layer
{
    /// <summary>Creates the layer (zeros until loaded).</summary>
    public ConstantLayer(ConstantOp op) : base(op) { register_buffer("value", zeros(op.Shape)); }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => get_buffer("value")!.alias();
}

/// <summary>Element-wise arithmetic; in inference it can accumulate into an input nobody else reads.</summary>
public sealed class BinaryLayer : Layer
{
    private readonly BinaryOp _op;

    /// <summary>Creates the layer.</summary>
    public BinaryLayer(BinaryOp op) : base(op) { _op = op; }

    /// <inheritdoc />
    public override bool CanRunInPlace => true;

    /// <inheritdoc />
    public override bool Commutative => _op.Operation is BinaryKind.Add or BinaryKind.Mul;

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> xs)
    {
        switch (_op.Operation)
        {
            case BinaryKind.Add:
                var sum = xs[0] + xs[1];
                for (int i = 2; i < xs.Count; i++) sum.add_(xs[i]);
                return sum;
            case BinaryKind.Sub: return xs[0] - xs[1];
            case BinaryKind.Mul: return xs[0] * xs[1];
            default: return xs[0] / xs[1];
        }
    }

    /// <inheritdoc />
    public override Tensor ForwardInPlace(IReadOnlyList<Tensor> xs, int target)
    {
        var acc = xs[target];
        switch (_op.Operation)
        {
            case BinaryKind.Add:
                for (int i = 0; i < xs.Count; i++) if (i != target) acc.add_(xs[i]);
                break;
            case BinaryKind.Mul: acc.mul_(xs[1 - target]); break;
            case BinaryKind.Sub: acc.sub_(xs[1]); break;
            default: acc.div_(xs[1]); break;
        }
        return acc.alias();
    }
}
