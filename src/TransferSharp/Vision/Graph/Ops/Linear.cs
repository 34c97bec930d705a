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
        if (!onnx.IsConstant(1)) throw onnx.Unsupported("Gemm with a computed B (only constant weights become Linear layers)");
        var x = onnx.Value(0);
        var bMat = onnx.Constant(1, "B");
        if (bMat.Shape.Length != 2 || x.Shape.Length != 2) throw onnx.Malformed("Gemm needs 2-D A and B");
        float alpha = onnx.Float("alpha", 1f), beta = onnx.Float("beta", 1f);
        bool transA = onnx.Int("transA", 0) != 0, transB = onnx.Int("transB", 0) != 0;
        var name = onnx.NodeName(1);
        if (transA) x = onnx.Add(new TransposeOp([1, 0]), onnx.Extra(name, "transpose"), x);
        var weight = transB ? bMat.AsFloats() : bMat.Transposed2D();
        long outF = transB ? bMat.Shape[0] : bMat.Shape[1], inF = transB ? bMat.Shape[1] : bMat.Shape[0];
        if (alpha != 1f) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
        var op = new LinearOp((int)inF, (int)outF, onnx.Has(2));
        var w = new ConstTensor([outF, inF], weight);
        if (!onnx.Has(2))
        {
            onnx.Emit(onnx.AddWithState(op, name, x, ("weight", w)));
            return;
        }
        var c = onnx.Constant(2, "C");
        var cf = c.AsFloats();
        float[] bias;
        if (c.Count == 1) bias = Enumerable.Repeat(cf[0] * beta, (int)outF).ToArray();
        else if (c.Count == outF && (c.Shape.Length == 1 || c.Shape[0] == 1)) bias = cf.Select(v => v * beta).ToArray();
        else throw onnx.Unsupported($"Gemm bias of shape [{string.Join(",", c.Shape)}] (only per-output biases)");
        onnx.Emit(onnx.AddWithState(op, name, x, ("weight", w), ("bias", new ConstTensor([outF], bias))));
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
