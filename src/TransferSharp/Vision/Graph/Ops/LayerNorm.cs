using System.Globalization;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>Layer normalisation over one dimension of <paramref name="Channels"/> values (PyTorch's
/// <c>nn.LayerNorm(Channels)</c>): the last dimension, or with <paramref name="ChannelsFirst"/> dimension 1 of an
/// [N, C, …] map, as timm's <c>LayerNorm2d</c> applies it to images without leaving their layout.</summary>
/// <param name="Channels">Size of the normalised dimension.</param>
/// <param name="Eps">Added to the variance (PyTorch's default 1e-5; timm's ConvNeXt and ViT use 1e-6).</param>
/// <param name="ChannelsFirst">Normalise dimension 1 instead of the last.</param>
/// <param name="Affine">Learn a per-channel weight and bias.</param>
public sealed record LayerNormOp(int Channels, double Eps = 1e-5, bool ChannelsFirst = false, bool Affine = true) : Op
{
    /// <inheritdoc />
    public override string Kind => ChannelsFirst ? "LayerNorm2d" : "LayerNorm";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (ChannelsFirst ? x.Length < 2 || x[1] != Channels : x.Length < 1 || x[^1] != Channels)
            throw Bad($"{Kind} expects {Channels} values on dimension {(ChannelsFirst ? "1" : "-1")}, got shape [{string.Join(",", x)}]");
        return x;
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => Affine ? [new("weight", [Channels]), new("bias", [Channels])] : [];

    /// <summary>LayerNormalization (opset 17) on the last axis — channels-first inputs are moved there and back, as
    /// timm computes it; older opsets get the two-pass formula (mean, then mean of squared deviations).</summary>
    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var rank = onnx.InputShapes[0].Length;
        var x = onnx.Inputs[0];
        var toLast = Enumerable.Range(0, rank).Where(d => d != 1).Append(1).Select(d => (long)d).ToArray();
        var fromLast = Enumerable.Range(0, rank).Select(d => d == 0 ? 0L : d == 1 ? rank - 1 : d - 1).ToArray();
        bool moved = ChannelsFirst && rank > 2;
        if (moved) x = onnx.Emit("Transpose", [x], onnx.Fresh(name + "_last"), Attr("perm", toLast));
        var outName = moved ? onnx.Fresh(name + "_normed") : onnx.Fresh(name);
        using var unit = Affine ? null : ones(Channels);
        string weight = onnx.Initializer(name + ".weight", unit ?? onnx.Parameter("weight"));
        string? bias = Affine ? onnx.Initializer(name + ".bias", onnx.Parameter("bias")) : null;
        string y;
        if (onnx.Opset >= 17)
            y = onnx.Emit("LayerNormalization", bias is null ? [x, weight] : [x, weight, bias], outName, Attr("axis", -1L), Attr("epsilon", Eps));
        else
        {
            string Mean(string input, string suffix) =>
                onnx.Emit("ReduceMean", [input], onnx.Fresh(name + suffix), Attr("axes", [-1L]), Attr("keepdims", 1));
            var centered = onnx.Emit("Sub", [x, Mean(x, "_mean")], onnx.Fresh(name + "_centered"));
            var variance = Mean(onnx.Emit("Mul", [centered, centered], onnx.Fresh(name + "_sq")), "_var");
            var std = onnx.Emit("Sqrt", [onnx.Emit("Add", [variance, onnx.Scalar(name + ".eps", Eps)], onnx.Fresh(name + "_vareps"))], onnx.Fresh(name + "_std"));
            var normed = onnx.Emit("Div", [centered, std], onnx.Fresh(name + "_div"));
            var scaled = onnx.Emit("Mul", [normed, weight], bias is null ? outName : onnx.Fresh(name + "_scaled"));
            y = bias is null ? scaled : onnx.Emit("Add", [scaled, bias], outName);
        }
        onnx.SetOutput(moved ? onnx.Emit("Transpose", [y], onnx.Fresh(name), Attr("perm", fromLast)) : y);
    }

    /// <summary>The ONNX operators imported as this op: LayerNormalization over the last axis alone.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("LayerNormalization", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        onnx.RequireUnusedOutputs(1);
        var x = onnx.Value(0);
        int rank = x.Shape.Length;
        if (OnnxImportContext.Norm(onnx.Int("axis", -1), rank) != rank - 1)
            throw onnx.Unsupported("LayerNormalization over more than the last axis");
        if (onnx.Int("stash_type", 1) != 1) throw onnx.Unsupported("LayerNormalization computed in a type other than float");
        if (!onnx.IsConstant(1) || (onnx.Has(2) && !onnx.IsConstant(2)))
            throw onnx.Unsupported("LayerNormalization with a computed scale or bias (only constants become LayerNorm layers)");
        long c = x.Shape[^1];
        var scale = onnx.Constant(1, "scale");
        if (scale.Count != c) throw onnx.Malformed($"LayerNormalization scale has {scale.Count} values for {c} channels");
        var bias = onnx.OptionalConstant(2, "B") ?? new ConstTensor([c], new float[c]);
        if (bias.Count != c) throw onnx.Malformed($"LayerNormalization bias has {bias.Count} values for {c} channels");
        var op = new LayerNormOp((int)c, onnx.Float("epsilon", 1e-5f));
        onnx.Emit(onnx.AddWithState(op, onnx.NodeName(1), x, ("weight", new ConstTensor([c], scale.AsFloats())), ("bias", new ConstTensor([c], bias.AsFloats()))));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new LayerNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Channels}, eps={Eps.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Layer normalisation (weight 1, bias 0 until loaded or trained).</summary>
public sealed class LayerNormLayer : Layer
{
    private readonly LayerNormOp _op;

    /// <summary>Creates the layer.</summary>
    public LayerNormLayer(LayerNormOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => p.Name == "weight" ? ones(p.Shape) : zeros(p.Shape));
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var x = inputs[0];
        Tensor? w = _op.Affine ? get_parameter("weight") : null, b = _op.Affine ? get_parameter("bias") : null;
        if (!_op.ChannelsFirst || x.dim() == 2) return F.layer_norm(x, [_op.Channels], w, b, _op.Eps);
        // timm's LayerNorm2d: permute the channels last, normalise, permute back (the same float32 rounding).
        var rank = x.dim();
        var toLast = Enumerable.Range(0, (int)rank).Where(d => d != 1).Append(1).Select(d => (long)d).ToArray();
        var fromLast = Enumerable.Range(0, (int)rank).Select(d => d == 0 ? 0L : d == 1 ? rank - 1 : d - 1).ToArray();
        using var last = x.permute(toLast);
        using var normed = F.layer_norm(last, [_op.Channels], w, b, _op.Eps);
        return normed.permute(fromLast);
    }
}
