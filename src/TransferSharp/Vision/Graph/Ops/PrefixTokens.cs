using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Learned tokens put in front of a token sequence [N, T, C] → [N, Count + T, C]: a vision transformer's class
/// token (<c>cls_token</c>, Count 1) or its register tokens (<c>reg_token</c>). The tensor [1, Count, C] is named by the
/// node itself, as timm holds it on the model (<see cref="ParameterShape.NodeItself"/>).</summary>
public sealed record PrefixTokensOp(int Count, int Channels) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 3, Kind);
        if (x[2] != Channels) throw Bad($"{Kind} expects {Channels} channels, got shape [{string.Join(",", x)}]");
        if (Count < 1) throw Bad($"{Kind}: {Count} tokens");
        return [x[0], x[1] + Count, x[2]];
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new(ParameterShape.NodeItself, [1, Count, Channels])];

    /// <inheritdoc />
    public override Layer CreateLayer() => new PrefixTokensLayer(this);

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var x = onnx.Inputs[0];
        // The tokens broadcast to the batch as x[:, :1, :]·0 + tokens: ops the importer reads back, where the Shape →
        // Expand of a dynamic batch would not be (patch embeddings are finite, so the product is an exact zero).
        var first = onnx.Emit("Slice", [x, onnx.Ints(name + ".first_start", 0), onnx.Ints(name + ".first_end", 1), onnx.Ints(name + ".first_axes", 1)],
            onnx.Fresh(name + "_first"));
        var zero = onnx.Emit("Mul", [first, onnx.Scalar(name + ".zero", 0)], onnx.Fresh(name + "_zero"));
        var tokens = onnx.Emit("Add", [zero, onnx.Initializer(name, onnx.Parameter(ParameterShape.NodeItself))], onnx.Fresh(name + "_batch"));
        onnx.Out("Concat", [tokens, x], Attr("axis", 1));
    }

    /// <inheritdoc />
    public override string Describe() => $"{Count}×{Channels}";
}

/// <summary>Prepends the learned tokens to every sample.</summary>
public sealed class PrefixTokensLayer : Layer
{
    /// <summary>Creates the layer (zeros until drawn or loaded).</summary>
    public PrefixTokensLayer(PrefixTokensOp op) : base(op) { RegisterDeclared(p => zeros(p.Shape)); }

    /// <summary>timm's initialisation: normal with standard deviation 1e-6 (<c>nn.init.normal_(self.cls_token, std=1e-6)</c>).</summary>
    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        NodeTensor!.normal_(0, 1e-6, generator);
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var x = inputs[0];
        using var tokens = NodeTensor!.expand(x.shape[0], -1, -1);
        return cat([tokens, x], 1);
    }
}
