using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

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
    /// <summary>aᵇ (ONNX Pow)</summary>
    Pow,
}

/// <summary>Binary element-wise op; with more than two inputs (Add only) all are summed. The operands broadcast as
/// ONNX (numpy) does.</summary>
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

    internal static long[] Broadcast(long[] a, long[] b) =>
        BroadcastShapes(a, b) ?? throw Bad($"shapes [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast");

    /// <summary>The numpy broadcast of two shapes, or null when they do not broadcast.</summary>
    internal static long[]? BroadcastShapes(long[] a, long[] b)
    {
        int n = Math.Max(a.Length, b.Length);
        var o = new long[n];
        for (int i = 0; i < n; i++)
        {
            long da = i < n - a.Length ? 1 : a[i - (n - a.Length)];
            long db = i < n - b.Length ? 1 : b[i - (n - b.Length)];
            if (da != db && da != 1 && db != 1) return null;
            o[i] = Math.Max(da, db);
        }
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out(onnx.Inputs.Count == 2 ? Operation.ToString() : "Sum", onnx.Inputs);

    /// <summary>The ONNX operators imported as this op (a scalar operand makes Add, Sub, Mul and Div a <see cref="ScaleOp"/>;
    /// a per-channel constant factor makes Mul a <see cref="LayerScaleOp"/>).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
    [
        ("Add", onnx => ImportOnnx(onnx, BinaryKind.Add)),
        ("Sub", onnx => ImportOnnx(onnx, BinaryKind.Sub)),
        ("Mul", onnx => ImportOnnx(onnx, BinaryKind.Mul)),
        ("Div", onnx => ImportOnnx(onnx, BinaryKind.Div)),
        ("Pow", onnx => ImportOnnx(onnx, BinaryKind.Pow)),
        ("Sum", ImportSum),
    ];

    private static void ImportOnnx(OnnxImportContext onnx, BinaryKind kind)
    {
        bool c0 = onnx.IsConstant(0), c1 = onnx.IsConstant(1);
        if (c0 && c1)
        {
            onnx.Fold(new BinaryOp(kind));
            return;
        }
        // A scalar constant on a value: an affine ScaleOp (no extra node, exact for Add/Sub/Mul).
        if (c1 && kind != BinaryKind.Pow && onnx.Constant(1, "operand") is { Count: 1 } s1 && s1.Shape.Length <= onnx.Value(0).Shape.Length)
        {
            double v = s1[0];
            var (scale, shift) = kind switch
            {
                BinaryKind.Add => (1.0, v),
                BinaryKind.Sub => (1.0, -v),
                BinaryKind.Mul => (v, 0.0),
                _ => (1.0 / v, 0.0),
            };
            if (kind != BinaryKind.Div || double.IsFinite(scale))
            {
                onnx.Out(new ScaleOp(scale, shift));
                return;
            }
        }
        if (c0 && onnx.Constant(0, "operand") is { Count: 1 } s0 && kind is BinaryKind.Add or BinaryKind.Sub or BinaryKind.Mul
            && s0.Shape.Length <= onnx.Value(1).Shape.Length)
        {
            double v = s0[0];
            var (scale, shift) = kind switch { BinaryKind.Add => (1.0, v), BinaryKind.Sub => (-1.0, v), _ => (v, 0.0) };
            onnx.Emit(onnx.Add(new ScaleOp(scale, shift), onnx.NodeName(), onnx.Value(1)));
            return;
        }
        // A Linear's bias written as a separate Add (a Linear on [N, …, C]) goes back into the Linear, trainable.
        if (kind == BinaryKind.Add && c0 != c1 && onnx.Constant(c1 ? 1 : 0, "operand") is { IsFloat: true } bias
            && bias.Shape.Reverse().Skip(1).All(d => d == 1) && onnx.TryAddLinearBias(c1 ? 0 : 1, bias))
        {
            onnx.Alias(c1 ? 0 : 1);
            return;
        }
        // A per-channel constant factor (LayerScale's gamma, as PyTorch and our exporter write it) stays trainable.
        if (kind == BinaryKind.Mul && c0 != c1)
        {
            int k = c1 ? 1 : 0;
            var factor = onnx.Constant(k, "operand");
            var value = onnx.Value(1 - k);
            if (factor.IsFloat && LayerScaleOp.ForConstantFactor(factor.Shape, value.Shape) is { } scale)
            {
                onnx.Emit(onnx.AddWithState(scale, onnx.NodeName(k), value, ("gamma", new ConstTensor([scale.Channels], factor.AsFloats()))));
                return;
            }
        }
        var a = onnx.Value(0);
        var b = onnx.Value(1);
        onnx.Emit(onnx.Add(new BinaryOp(kind), onnx.NodeName(), a, b));
    }

    private static void ImportSum(OnnxImportContext onnx)
    {
        if (onnx.InputCount == 1) { onnx.Alias(); return; }
        var xs = Enumerable.Range(0, onnx.InputCount).Select(onnx.Value).ToArray();
        onnx.Emit(onnx.Add(new BinaryOp(BinaryKind.Add), onnx.NodeName(), xs));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new BinaryLayer(this);
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
            case BinaryKind.Pow: return xs[0].pow(xs[1]);
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
            case BinaryKind.Pow: acc.pow_(xs[1]); break;
            default: acc.div_(xs[1]); break;
        }
        return acc.alias();
    }
}
