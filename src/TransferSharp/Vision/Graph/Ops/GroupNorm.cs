using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

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
    public override IReadOnlyList<ParameterShape> ParameterShapes => Affine ? [new("weight", [Channels]), new("bias", [Channels])] : [];

    /// <summary>GroupNorm from elementary ops over [N, G, rest]: mean, then the mean of squared deviations (two passes,
    /// as PyTorch computes it; ONNX Runtime's InstanceNormalization loses precision when activations have a large
    /// mean), then the per-channel affine.</summary>
    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var x = onnx.Inputs[0];
        var shapeOf = onnx.Emit("Shape", [x], onnx.Fresh(name + "_shape"));
        var grouped = onnx.Emit("Reshape", [x, onnx.Ints(name + ".grouped", 0, Groups, -1)], onnx.Fresh(name + "_grouped"));
        string Mean(string input, string suffix) => onnx.Opset >= 18
            ? onnx.Emit("ReduceMean", [input, onnx.Ints(name + ".axes", 2)], onnx.Fresh(name + suffix), Attr("keepdims", 1))
            : onnx.Emit("ReduceMean", [input], onnx.Fresh(name + suffix), Attr("axes", [2L]), Attr("keepdims", 1));
        var mean = Mean(grouped, "_mean");
        var centered = onnx.Emit("Sub", [grouped, mean], onnx.Fresh(name + "_centered"));
        var variance = Mean(onnx.Emit("Mul", [centered, centered], onnx.Fresh(name + "_sq")), "_var");
        var std = onnx.Emit("Sqrt", [onnx.Emit("Add", [variance, onnx.Scalar(name + ".eps", Eps)], onnx.Fresh(name + "_vareps"))], onnx.Fresh(name + "_std"));
        var normed = onnx.Emit("Div", [centered, std], onnx.Fresh(name + "_normed"));
        var back = onnx.Emit("Reshape", [normed, shapeOf], Affine ? onnx.Fresh(name + "_norm") : onnx.Fresh(name));
        if (!Affine) { onnx.SetOutput(back); return; }
        var affineShape = new long[] { Channels }.Concat(Enumerable.Repeat(1L, onnx.InputShapes[0].Length - 2)).ToArray();
        using var w = onnx.Parameter("weight").reshape(affineShape);
        using var b = onnx.Parameter("bias").reshape(affineShape);
        var scaled = onnx.Emit("Mul", [back, onnx.Initializer(name + ".weight", w)], onnx.Fresh(name + "_scaled"));
        onnx.SetOutput(onnx.Emit("Add", [scaled, onnx.Initializer(name + ".bias", b)], onnx.Fresh(name)));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new GroupNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Groups} groups, {Channels}";
}

/// <summary>Group normalisation.</summary>
public sealed class GroupNormLayer : Layer
{
    private readonly GroupNormOp _op;

    /// <summary>Creates the layer.</summary>
    public GroupNormLayer(GroupNormOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => p.Name == "weight" ? ones(p.Shape) : zeros(p.Shape));
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) =>
        F.group_norm(inputs[0], _op.Groups, _op.Affine ? get_parameter("weight") : null, _op.Affine ? get_parameter("bias") : null, _op.Eps);
}
