using System.Globalization;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

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
    public override IReadOnlyList<ParameterShape> ParameterShapes =>
    [
        new("weight", [Features]), new("bias", [Features]),
        new("running_mean", [Features], IsBuffer: true), new("running_var", [Features], IsBuffer: true),
        new("num_batches_tracked", [], IsBuffer: true),
    ];

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        onnx.Out("BatchNormalization",
            [onnx.Inputs[0], onnx.Initializer(name + ".weight", onnx.Parameter("weight")), onnx.Initializer(name + ".bias", onnx.Parameter("bias")),
             onnx.Initializer(name + ".running_mean", onnx.Parameter("running_mean")), onnx.Initializer(name + ".running_var", onnx.Parameter("running_var"))],
            Attr("epsilon", Eps), Attr("momentum", 1 - Momentum));
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("BatchNormalization", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        var scale = onnx.Constant(1, "scale");
        var shift = onnx.Constant(2, "bias");
        var mean = onnx.Constant(3, "mean");
        var variance = onnx.Constant(4, "variance");
        onnx.RequireUnusedOutputs(1);
        // Opset 14's training_mode normalises with the batch's own statistics at inference, not the running ones.
        if (onnx.Int("training_mode", 0) != 0) throw onnx.Unsupported("training_mode 1 (normalising with the batch's statistics at inference)");
        long c = x.Shape[1];
        foreach (var t in new[] { scale, shift, mean, variance })
            if (t.Count != c) throw onnx.Unsupported($"per-position statistics (spatial=0, shape [{string.Join(",", t.Shape)}]); only per-channel is supported");
        // ONNX: running = running·momentum + batch·(1 − momentum); PyTorch's momentum is the other weight.
        double momentum = Math.Clamp(1.0 - onnx.Float("momentum", 0.9f), 1e-6, 1.0);
        var name = onnx.NodeName(3);
        var op = new BatchNormOp((int)c, onnx.Float("epsilon", 1e-5f), momentum);
        onnx.Emit(onnx.AddWithState(op, name, x, ("weight", new ConstTensor([c], scale.AsFloats())), ("bias", new ConstTensor([c], shift.AsFloats())),
            ("running_mean", new ConstTensor([c], mean.AsFloats())), ("running_var", new ConstTensor([c], variance.AsFloats()))));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new BatchNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Features}, eps={Eps.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Batch normalisation with PyTorch's parameters and buffers.</summary>
public sealed class BatchNormLayer : Layer
{
    private readonly BatchNormOp _op;

    /// <summary>Creates the layer (scale 1, shift 0, mean 0, variance 1).</summary>
    public BatchNormLayer(BatchNormOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => p.Name switch
        {
            "weight" or "running_var" => ones(p.Shape),
            // PyTorch counts batches in an int64 scalar.
            "num_batches_tracked" => tensor(0L),
            _ => zeros(p.Shape),
        });
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
