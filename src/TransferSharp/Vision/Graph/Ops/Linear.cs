using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

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
    public override IReadOnlyList<ParameterShape> ParameterShapes
    {
        get
        {
            ParameterShape weight = new("weight", WeightAs1x1Conv ? [OutFeatures, InFeatures, 1, 1] : [OutFeatures, InFeatures]);
            return Bias ? [weight, new("bias", [OutFeatures])] : [weight];
        }
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        // Heads stored as a 1×1 convolution (timm's ResNetV2) keep a [out, in, 1, 1] weight.
        var weight = WeightAs1x1Conv ? onnx.Parameter("weight").reshape(OutFeatures, InFeatures) : onnx.Parameter("weight");
        if (onnx.InputShapes[0].Length == 2)
        {
            var inputs = new List<string> { onnx.Inputs[0], onnx.Initializer(name + ".weight", weight) };
            if (Bias) inputs.Add(onnx.Initializer(name + ".bias", onnx.Parameter("bias")));
            onnx.Out("Gemm", inputs, Attr("transB", 1));
        }
        else
        {
            using var wt = weight.t();
            var y = onnx.Emit("MatMul", [onnx.Inputs[0], onnx.Initializer(name + ".weight_t", wt)], Bias ? onnx.Fresh(name + "_matmul") : onnx.Fresh(name));
            onnx.SetOutput(Bias ? onnx.Emit("Add", [y, onnx.Initializer(name + ".bias", onnx.Parameter("bias"))], onnx.Fresh(name)) : y);
        }
    }

    /// <summary>The ONNX operators imported as this op (a constant-weight MatMul too: see <see cref="MatMulOp"/>).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Gemm", ImportGemm)];

    private static void ImportGemm(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        float alpha = onnx.Float("alpha", 1f), beta = onnx.Float("beta", 1f);
        bool transA = onnx.Int("transA", 0) != 0, transB = onnx.Int("transB", 0) != 0;
        var name = onnx.NodeName(1);
        // A of higher rank is read as a matrix [N, rest], as the Caffe2 FC semantics older exporters relied on.
        if (x.Shape.Length > 2 && !transA) x = onnx.Add(new FlattenOp(1), onnx.Extra(name, "flatten"), x);
        if (x.Shape.Length != 2) throw onnx.Malformed($"Gemm's A has shape [{string.Join(",", x.Shape)}]; a transposed A must be a matrix");
        if (transA) x = onnx.Add(new TransposeOp([1, 0]), onnx.Extra(name, "transpose"), x);
        if (!onnx.IsConstant(1))
        {
            ImportGemmOfValues(onnx, name, x, alpha, beta, transB);
            return;
        }
        var bMat = onnx.Constant(1, "B");
        if (bMat.Shape.Length != 2) throw onnx.Malformed($"Gemm's B has shape [{string.Join(",", bMat.Shape)}], not a matrix");
        var weight = transB ? bMat.AsFloats() : bMat.Transposed2D();
        long outF = transB ? bMat.Shape[0] : bMat.Shape[1], inF = transB ? bMat.Shape[1] : bMat.Shape[0];
        if (alpha != 1f) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
        var w = new ConstTensor([outF, inF], weight);
        var c = onnx.OptionalConstant(2, "C");
        // A per-output bias (scalar, [N], [1, N]) is the layer's bias; a bias per row ([M, N], [M, 1]) is added after it.
        bool perOutput = c is not null && (c.Count == 1 || (c.Count == outF && (c.Shape.Length == 1 || c.Shape[0] == 1)));
        if (!perOutput)
        {
            var y = onnx.AddWithState(new LinearOp((int)inF, (int)outF, false), name, x, ("weight", w));
            onnx.Emit(c is null ? y : AddBias(onnx, name, y, beta));
            return;
        }
        var cf = c!.AsFloats();
        float[] bias = c.Count == 1 ? Enumerable.Repeat(cf[0] * beta, (int)outF).ToArray() : cf.Select(v => v * beta).ToArray();
        onnx.Emit(onnx.AddWithState(new LinearOp((int)inF, (int)outF, true), name, x, ("weight", w), ("bias", new ConstTensor([outF], bias))));
    }

    /// <summary>Gemm whose B is computed: a matrix product of two values, scaled, plus C.</summary>
    private static void ImportGemmOfValues(OnnxImportContext onnx, string name, Sym a, float alpha, float beta, bool transB)
    {
        var b = onnx.Value(1);
        if (b.Shape.Length != 2) throw onnx.Malformed($"Gemm's B has shape [{string.Join(",", b.Shape)}], not a matrix");
        if (transB) b = onnx.Add(new TransposeOp([1, 0]), onnx.Extra(name, "transpose_b"), b);
        var y = onnx.Add(new MatMulOp(), onnx.Has(2) || alpha != 1f ? onnx.Extra(name, "matmul") : name, a, b);
        if (alpha != 1f) y = onnx.Add(new ScaleOp(alpha), onnx.Has(2) ? onnx.Extra(name, "alpha") : name, y);
        onnx.Emit(onnx.Has(2) ? AddBias(onnx, name, y, beta) : y);
    }

    private static Sym AddBias(OnnxImportContext onnx, string name, Sym y, float beta)
    {
        var c = onnx.Value(2);
        if (beta != 1f) c = onnx.Add(new ScaleOp(beta), onnx.Extra(name, "beta"), c);
        return onnx.Add(new BinaryOp(BinaryKind.Add), onnx.Extra(name, "bias"), y, c);
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new LinearLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{InFeatures}→{OutFeatures}" + (WeightAs1x1Conv ? ", 1×1 conv weight" : "");
}

/// <summary>Fully connected layer with PyTorch's default initialisation.</summary>
public sealed class LinearLayer : Layer
{
    private readonly LinearOp _op;

    /// <summary>Creates the layer (uninitialised until <see cref="GraphModule"/> draws it).</summary>
    public LinearLayer(LinearOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => empty(p.Shape));
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
