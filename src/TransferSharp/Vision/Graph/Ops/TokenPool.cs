using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>How a token sequence [N, T, C] becomes one feature vector per sample.</summary>
public enum TokenPoolKind
{
    /// <summary>The class token (the first token): timm's <c>global_pool='token'</c>, ViT's pre-logits.</summary>
    Class,
    /// <summary>The mean of the patch tokens (the tokens after the prefix tokens): timm's <c>global_pool='avg'</c>.</summary>
    Mean,
    /// <summary>The class token and the mean of the patch tokens, concatenated ([N, 2C]): the features DINOv2's linear
    /// probes read.</summary>
    ClassAndMean,
}

/// <summary>Pools a token sequence [N, T, C] to [N, C] (or [N, 2C] for <see cref="TokenPoolKind.ClassAndMean"/>);
/// <paramref name="PrefixTokens"/> is the number of leading class and register tokens, which the mean leaves out.</summary>
public sealed record TokenPoolOp(TokenPoolKind Pool, int PrefixTokens = 1) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 3, Kind);
        if (PrefixTokens < 0) throw Bad($"{Kind}: {PrefixTokens} prefix tokens");
        if (Pool != TokenPoolKind.Mean && (PrefixTokens < 1 || x[1] < 1)) throw Bad($"{Kind} {Pool} needs a class token (prefix tokens: {PrefixTokens})");
        if (Pool != TokenPoolKind.Class && x[1] <= PrefixTokens) throw Bad($"{Kind} {Pool}: [{string.Join(",", x)}] has no patch tokens after its {PrefixTokens} prefix tokens");
        return [x[0], Pool == TokenPoolKind.ClassAndMean ? 2 * x[2] : x[2]];
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Apply(xs[0]));

    private Tensor Apply(Tensor x)
    {
        if (Pool == TokenPoolKind.Class) return x.select(1, 0).contiguous();
        using var patches = x.narrow(1, PrefixTokens, x.shape[1] - PrefixTokens);
        var mean = patches.mean([1]);
        if (Pool == TokenPoolKind.Mean) return mean;
        using var cls = x.select(1, 0);
        using (mean) return cat([cls, mean], 1);
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var x = onnx.Inputs[0];
        long tokens = onnx.InputShapes[0][1];
        string Cls() => onnx.Emit("Squeeze", [onnx.Emit("Slice", [x, onnx.Ints(name + ".cls_start", 0), onnx.Ints(name + ".cls_end", 1), onnx.Ints(name + ".cls_axes", 1)],
            onnx.Fresh(name + "_cls_slice")), onnx.Ints(name + ".cls_squeeze", 1)], onnx.Fresh(name + "_cls"));
        string Mean()
        {
            var patches = onnx.Emit("Slice", [x, onnx.Ints(name + ".patch_start", PrefixTokens), onnx.Ints(name + ".patch_end", tokens), onnx.Ints(name + ".patch_axes", 1)],
                onnx.Fresh(name + "_patches"));
            return onnx.Opset >= 18
                ? onnx.Emit("ReduceMean", [patches, onnx.Ints(name + ".axes", 1)], onnx.Fresh(name + "_mean"), Attr("keepdims", 0))
                : onnx.Emit("ReduceMean", [patches], onnx.Fresh(name + "_mean"), Attr("axes", [1L]), Attr("keepdims", 0));
        }
        switch (Pool)
        {
            case TokenPoolKind.Class: onnx.SetOutput(Cls()); break;
            case TokenPoolKind.Mean: onnx.SetOutput(Mean()); break;
            default: onnx.Out("Concat", [Cls(), Mean()], Attr("axis", 1)); break;
        }
    }

    /// <inheritdoc />
    public override string Describe() => Pool == TokenPoolKind.Class ? "class token" : $"{Pool}, {PrefixTokens} prefix tokens";
}
