using System.Globalization;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// What a graph node computes, as data. Zoo builders and the ONNX importer produce ops; the
/// interpreter turns each into a <see cref="Layer"/>; ONNX export, summaries and inference rewrites
/// read them. Shapes are NCHW (or N×F) with the batch dimension included.
/// </summary>
public abstract record Op
{
    /// <summary>Short name of the op kind, as shown in summaries ("Conv2d", "Add", …).</summary>
    public virtual string Kind => GetType().Name.EndsWith("Op", StringComparison.Ordinal) ? GetType().Name[..^2] : GetType().Name;

    /// <summary>How many inputs the op takes; -1 for any number ≥ 1.</summary>
    public virtual int Arity => 1;

    /// <summary>The output shape for the given input shapes, or an <see cref="GraphException"/>.</summary>
    public abstract long[] InferShape(IReadOnlyList<long[]> inputs);

    /// <summary>Multiply-accumulate operations of one forward pass (0 for ops that do none worth counting).</summary>
    public virtual long Macs(IReadOnlyList<long[]> inputs, long[] output) => 0;

    /// <summary>A fresh executable layer (parameters initialised randomly where the op has any).</summary>
    public abstract Layer CreateLayer();

    /// <summary>A short human description of the arguments for summaries.</summary>
    public virtual string Describe() => "";

    /// <summary>True when the output may share storage with an input or a buffer (views such as
    /// reshape or slice, identity, constants): such values are never overwritten in place.</summary>
    public virtual bool OutputMayAlias => false;

    internal static long Numel(long[] shape) { long n = 1; foreach (var d in shape) n *= d; return n; }

    internal static GraphException Bad(string message) => new(message);

    internal static void RequireRank(long[] shape, int rank, string what)
    {
        if (shape.Length != rank) throw Bad($"{what} expects a {rank}-D input, got shape [{string.Join(",", shape)}]");
    }
}

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
    public override Layer CreateLayer() => new ConvLayer(this);

    /// <inheritdoc />
    public override string Describe() =>
        $"{InChannels}→{OutChannels}, k={Kernel}, s={Stride}, p={Padding}" + (Dilation != new Size2(1, 1) ? $", d={Dilation}" : "")
        + (Groups != 1 ? $", g={Groups}" : "") + (Bias ? "" : ", no bias");
}

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
    public override Layer CreateLayer() => new ConvTransposeLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{InChannels}→{OutChannels}, k={Kernel}, s={Stride}, p={Padding}";
}

/// <summary>Batch normalisation over dimension 1 (any rank ≥ 2), PyTorch parameter names.</summary>
public sealed record BatchNormOp(int Features, double Eps = 1e-5, double Momentum = 0.1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 2 || x[1] != Features) throw Bad($"BatchNorm expects {Features} channels, got shape [{string.Join(",", x)}]");
        return x;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new BatchNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Features}, eps={Eps.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Group normalisation (PyTorch semantics).</summary>
public sealed record GroupNormOp(int Groups, int Channels, double Eps = 1e-5, bool Affine = true) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 2 || x[1] != Channels) throw Bad($"GroupNorm expects {Channels} channels");
        return x;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new GroupNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Groups} groups, {Channels}";
}

/// <summary>Fully connected layer on the last dimension (weight [out, in]). With
/// <paramref name="WeightAs1x1Conv"/> the weight is kept as [out, in, 1, 1], the layout of heads that
/// apply a 1×1 convolution to the pooled map (timm's ResNetV2 "head.fc"), so their checkpoints load as
/// they are; the computation is the same.</summary>
public sealed record LinearOp(int InFeatures, int OutFeatures, bool Bias = true, bool WeightAs1x1Conv = false) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 1 || x[^1] != InFeatures) throw Bad($"Linear expects {InFeatures} input features, got shape [{string.Join(",", x)}]");
        var o = (long[])x.Clone();
        o[^1] = OutFeatures;
        return o;
    }

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => Numel(output) * InFeatures;

    /// <inheritdoc />
    public override Layer CreateLayer() => new LinearLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{InFeatures}→{OutFeatures}" + (WeightAs1x1Conv ? ", 1×1 conv weight" : "");
}

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
    /// <summary>max(0, min(1, alpha·x + beta)) (ONNX HardSigmoid)</summary>
    HardSigmoid,
    /// <summary>x · relu6(x + 3) / 6</summary>
    HardSwish,
    /// <summary>x · sigmoid(x)</summary>
    Silu,
    /// <summary>Gaussian error linear unit (exact)</summary>
    Gelu,
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

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

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

/// <summary>Softmax over one axis.</summary>
public sealed record SoftmaxOp(int Axis = -1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.softmax(xs[0], Axis));
}

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

    /// <inheritdoc />
    public override Layer CreateLayer() => new PoolLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"k={Kernel}, s={Stride}, p={Padding}" + (CeilMode ? ", ceil" : "")
        + (Pool == PoolKind.Avg && !CountIncludePad ? ", exclude pad" : "");
}

/// <summary>Pooling over all spatial positions; keeps [N, C, 1, 1] or flattens to [N, C].</summary>
public sealed record GlobalPoolOp(PoolKind Pool, bool KeepDims = true) : Op
{
    /// <inheritdoc />
    public override string Kind => Pool == PoolKind.Max ? "GlobalMaxPool" : "GlobalAvgPool";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 3) throw Bad($"{Kind} expects a spatial input");
        if (!KeepDims) return [x[0], x[1]];
        var o = (long[])x.Clone();
        for (int i = 2; i < o.Length; i++) o[i] = 1;
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => GlobalPool(xs[0], Pool, KeepDims));

    internal static TorchSharp.torch.Tensor GlobalPool(TorchSharp.torch.Tensor x, PoolKind pool, bool keepDims)
    {
        var dims = Enumerable.Range(2, (int)x.dim() - 2).Select(i => (long)i).ToArray();
        if (pool == PoolKind.Avg) return x.mean(dims, keepdim: keepDims);
        return x.amax(dims, keepdim: keepDims);
    }
}

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

/// <summary>Element-wise binary arithmetic with broadcasting.</summary>
public enum BinaryKind
{
    /// <summary>a + b</summary>
    Add,
    /// <summary>a − b</summary>
    Sub,
    /// <summary>a · b</summary>
    Mul,
    /// <summary>a / b</summary>
    Div,
}

/// <summary>Binary element-wise op; with more than two inputs (Add only) all are summed.</summary>
public sealed record BinaryOp(BinaryKind Operation) : Op
{
    /// <inheritdoc />
    public override string Kind => Operation.ToString();

    /// <inheritdoc />
    public override int Arity => Operation == BinaryKind.Add ? -1 : 2;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var shape = inputs[0];
        for (int i = 1; i < inputs.Count; i++) shape = Broadcast(shape, inputs[i]);
        return shape;
    }

    internal static long[] Broadcast(long[] a, long[] b)
    {
        int n = Math.Max(a.Length, b.Length);
        var o = new long[n];
        for (int i = 0; i < n; i++)
        {
            long da = i < n - a.Length ? 1 : a[i - (n - a.Length)];
            long db = i < n - b.Length ? 1 : b[i - (n - b.Length)];
            if (da != db && da != 1 && db != 1) throw Bad($"shapes [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast");
            o[i] = Math.Max(da, db);
        }
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new BinaryLayer(this);
}

/// <summary>Multiplies by a constant (Inception-ResNet's residual scale), optionally adding one.</summary>
public sealed record ScaleOp(double Scale, double Shift = 0) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Shift == 0 ? xs[0] * Scale : xs[0] * Scale + Shift);

    /// <inheritdoc />
    public override string Describe() => $"×{Scale.ToString(CultureInfo.InvariantCulture)}" + (Shift != 0 ? $" +{Shift.ToString(CultureInfo.InvariantCulture)}" : "");
}

/// <summary>Concatenation along an axis.</summary>
public sealed record ConcatOp(int Axis = 1) : Op
{
    /// <inheritdoc />
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        int axis = Axis < 0 ? Axis + o.Length : Axis;
        for (int i = 1; i < inputs.Count; i++)
        {
            var s = inputs[i];
            if (s.Length != o.Length) throw Bad("Concat inputs differ in rank");
            for (int d = 0; d < o.Length; d++)
                if (d != axis && s[d] != o[d]) throw Bad($"Concat inputs differ in dimension {d}: {o[d]} and {s[d]}");
            o[axis] += s[axis];
        }
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.cat(xs.ToArray(), Axis));
}

/// <summary>Flattens dimensions from <see cref="StartDim"/> on (PyTorch flatten).</summary>
public sealed record FlattenOp(int StartDim = 1) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        int s = StartDim < 0 ? StartDim + x.Length : StartDim;
        var o = new long[s + 1];
        Array.Copy(x, o, s);
        o[s] = 1;
        for (int i = s; i < x.Length; i++) o[s] *= x[i];
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].flatten(StartDim));
}

/// <summary>Reshape to a fixed shape; 0 copies the input's dimension, -1 is inferred (ONNX rules).</summary>
public sealed record ReshapeOp(long[] Shape) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Resolve(inputs[0]);

    internal long[] Resolve(long[] x)
    {
        var o = (long[])Shape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < o.Length; i++)
        {
            if (o[i] == 0) o[i] = i < x.Length ? x[i] : throw Bad("Reshape: 0 refers past the input's rank");
            if (o[i] == -1) { if (infer >= 0) throw Bad("Reshape: more than one -1"); infer = i; }
            else known *= o[i];
        }
        long total = Numel(x);
        if (infer >= 0)
        {
            if (known == 0 || total % known != 0) throw Bad($"Reshape: cannot reshape [{string.Join(",", x)}] to [{string.Join(",", Shape)}]");
            o[infer] = total / known;
        }
        else if (known != total) throw Bad($"Reshape: [{string.Join(",", x)}] has {total} elements, target [{string.Join(",", Shape)}] has {known}");
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        // The batch dimension may differ from the shape the graph was built for.
        var x = xs[0];
        var target = (long[])Shape.Clone();
        for (int i = 0; i < target.Length; i++) if (target[i] == 0) target[i] = x.shape[i];
        return x.reshape(target);
    });

    /// <inheritdoc />
    public bool Equals(ReshapeOp? other) => other is not null && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => Shape.Length;

    /// <inheritdoc />
    public override string Describe() => $"[{string.Join(",", Shape)}]";
}

/// <summary>Permutes dimensions.</summary>
public sealed record TransposeOp(int[] Perm) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Perm.Select(p => inputs[0][p]).ToArray();

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].permute(Perm.Select(p => (long)p).ToArray()));

    /// <inheritdoc />
    public bool Equals(TransposeOp? other) => other is not null && Perm.SequenceEqual(other.Perm);

    /// <inheritdoc />
    public override int GetHashCode() => Perm.Length;
}

/// <summary>Takes a strided range along one axis (end exclusive, clamped as in ONNX/Python).</summary>
public sealed record SliceOp(int Axis, long Start, long End, long Step = 1) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        int a = Axis < 0 ? Axis + o.Length : Axis;
        var (s, e) = Clamp(o[a]);
        o[a] = Step > 0 ? Math.Max(0, (e - s + Step - 1) / Step) : Math.Max(0, (s - e + (-Step) - 1) / -Step);
        return o;
    }

    internal (long Start, long End) Clamp(long dim)
    {
        long s = Start < 0 ? Start + dim : Start, e = End < 0 ? End + dim : End;
        if (Step > 0) { s = Math.Clamp(s, 0, dim); e = Math.Clamp(e, 0, dim); }
        else { s = Math.Clamp(s, -1, dim - 1); e = Math.Clamp(e, -1, dim - 1); }
        return (s, e);
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var x = xs[0];
        int a = Axis < 0 ? Axis + (int)x.dim() : Axis;
        var (s, e) = Clamp(x.shape[a]);
        if (Step == 1) return x.narrow(a, s, Math.Max(0, e - s));
        if (Step > 0) return x.slice(a, s, e, Step);
        using var idx = TorchSharp.torch.arange(s, e, Step, dtype: TorchSharp.torch.int64, device: x.device);
        return x.index_select(a, idx);
    });

    /// <inheritdoc />
    public override string Describe() => $"axis {Axis}: {Start}..{End}" + (Step != 1 ? $" step {Step}" : "");
}

/// <summary>Pads the last two dimensions (top, left, bottom, right) with a constant or by reflection.</summary>
public sealed record PadOp(int Top, int Left, int Bottom, int Right, double Value = 0, string Mode = "constant") : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        if (o.Length < 2) throw Bad("Pad expects at least a 2-D input");
        o[^2] += Top + Bottom;
        o[^1] += Left + Right;
        if (o[^2] <= 0 || o[^1] <= 0) throw Bad("Pad: negative padding removes the whole input");
        return o;
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.pad(xs[0],
        [Left, Right, Top, Bottom],
        Mode switch { "reflect" => TorchSharp.PaddingModes.Reflect, "edge" => TorchSharp.PaddingModes.Replicate, _ => TorchSharp.PaddingModes.Constant },
        Value));

    /// <inheritdoc />
    public override string Describe() => $"(t{Top},l{Left},b{Bottom},r{Right})" + (Mode != "constant" ? " " + Mode : "");
}

/// <summary>Dropout: active in training mode only.</summary>
public sealed record DropoutOp(double P) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new DropoutLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"p={P.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Passes its input through.</summary>
public sealed record IdentityOp : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].alias());
}

/// <summary>Matrix product of two inputs (numpy matmul semantics).</summary>
public sealed record MatMulOp : Op
{
    /// <inheritdoc />
    public override int Arity => 2;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var a = inputs[0];
        var b = inputs[1];
        if (a.Length < 2 || b.Length < 2) throw Bad("MatMul expects inputs of rank ≥ 2");
        if (a[^1] != b[^2]) throw Bad($"MatMul: inner dimensions {a[^1]} and {b[^2]} differ");
        var batch = BinaryOp.Broadcast(a[..^2], b[..^2]);
        return [.. batch, a[^2], b[^1]];
    }

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => Numel(output) * inputs[0][^1];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].matmul(xs[1]));
}

/// <summary>A constant tensor (kept as a non-trainable buffer named "value").</summary>
public sealed record ConstantOp(long[] Shape) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override int Arity => 0;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Shape;

    /// <inheritdoc />
    public override Layer CreateLayer() => new ConstantLayer(this);

    /// <inheritdoc />
    public bool Equals(ConstantOp? other) => other is not null && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => Shape.Length;

    /// <inheritdoc />
    public override string Describe() => $"[{string.Join(",", Shape)}]";
}

/// <summary>Removes or inserts size-1 axes.</summary>
public sealed record SqueezeOp(int[] Axes, bool Unsqueeze = false) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override string Kind => Unsqueeze ? "Unsqueeze" : "Squeeze";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0].ToList();
        if (Unsqueeze)
        {
            int rank = x.Count + Axes.Length;
            foreach (var a in Axes.Select(a => a < 0 ? a + rank : a).Order()) x.Insert(a, 1);
            return x.ToArray();
        }
        var axes = Axes.Select(a => a < 0 ? a + x.Count : a).ToHashSet();
        foreach (var a in axes) if (x[a] != 1) throw Bad($"Squeeze: axis {a} has size {x[a]}, not 1");
        return x.Where((_, i) => !axes.Contains(i)).ToArray();
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var x = xs[0];
        var shape = InferShapeDynamic(x.shape);
        return x.reshape(shape);
    });

    private long[] InferShapeDynamic(long[] shape)
    {
        // Same rules, applied to the run-time shape (the batch dimension may differ).
        return InferShape([shape]);
    }

    /// <inheritdoc />
    public bool Equals(SqueezeOp? other) => other is not null && Unsqueeze == other.Unsqueeze && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => Axes.Length;
}

/// <summary>Element-wise unary math functions (ONNX Sqrt, Erf, Exp, Log, Abs, Neg, Reciprocal).</summary>
public enum UnaryKind
{
    /// <summary>√x</summary>
    Sqrt,
    /// <summary>The error function.</summary>
    Erf,
    /// <summary>eˣ</summary>
    Exp,
    /// <summary>ln x</summary>
    Log,
    /// <summary>|x|</summary>
    Abs,
    /// <summary>−x</summary>
    Neg,
    /// <summary>1 / x</summary>
    Reciprocal,
}

/// <summary>An element-wise unary function (what imported graphs spell out: GroupNorm and GELU written
/// as elementary ONNX ops).</summary>
public sealed record UnaryOp(UnaryKind Function) : Op
{
    /// <inheritdoc />
    public override string Kind => Function.ToString();

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Function switch
    {
        UnaryKind.Sqrt => xs[0].sqrt(),
        UnaryKind.Erf => xs[0].erf(),
        UnaryKind.Exp => xs[0].exp(),
        UnaryKind.Log => xs[0].log(),
        UnaryKind.Abs => xs[0].abs(),
        UnaryKind.Neg => xs[0].neg(),
        _ => xs[0].reciprocal(),
    });
}

/// <summary>Mean or maximum over axes (ONNX ReduceMean / ReduceMax); the batch axis may not be reduced
/// away unless kept.</summary>
public sealed record ReduceOp(PoolKind Reduction, int[] Axes, bool KeepDims = true) : Op
{
    /// <inheritdoc />
    public override string Kind => Reduction == PoolKind.Avg ? "ReduceMean" : "ReduceMax";

    private long[] Normalized(int rank) => Axes.Select(a => (long)(a < 0 ? a + rank : a)).Distinct().Order().ToArray();

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        var axes = Normalized(x.Length);
        if (axes.Any(a => a < 0 || a >= x.Length)) throw Bad($"{Kind}: axes [{string.Join(",", Axes)}] out of range for rank {x.Length}");
        if (KeepDims) return x.Select((d, i) => axes.Contains(i) ? 1 : d).ToArray();
        return x.Where((_, i) => !axes.Contains(i)).ToArray();
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var axes = Normalized((int)xs[0].dim());
        return Reduction == PoolKind.Avg ? xs[0].mean(axes, keepdim: KeepDims) : xs[0].amax(axes, keepdim: KeepDims);
    });

    /// <inheritdoc />
    public bool Equals(ReduceOp? other) => other is not null && Reduction == other.Reduction && KeepDims == other.KeepDims && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => Axes.Length;

    /// <inheritdoc />
    public override string Describe() => $"axes [{string.Join(",", Axes)}]" + (KeepDims ? ", keepdims" : "");
}

/// <summary>Element-wise maximum or minimum of its inputs with broadcasting (ONNX Max / Min).</summary>
public sealed record ExtremumOp(bool Maximum) : Op
{
    /// <inheritdoc />
    public override string Kind => Maximum ? "Max" : "Min";

    /// <inheritdoc />
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => new BinaryOp(BinaryKind.Add).InferShape(inputs);

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var y = xs[0].alias();
        for (int i = 1; i < xs.Count; i++)
        {
            var next = Maximum ? y.maximum(xs[i]) : y.minimum(xs[i]);
            y.Dispose();
            y = next;
        }
        return y;
    });
}
