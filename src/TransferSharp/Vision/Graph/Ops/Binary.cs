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

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out(onnx.Inputs.Count == 2 ? Operation.ToString() : "Sum", onnx.Inputs);

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
