using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// Multi-head scaled dot-product self-attention on packed queries, keys and values: the input is the output of a
/// transformer's qkv projection [N, T, 3C] (timm's <c>attn.qkv</c>, a Linear node before this one), laid out as timm's
/// <c>Attention</c> reshapes it ([N, T, 3, Heads, C / Heads]); the output [N, T, C] is the heads concatenated, before the
/// output projection (<c>attn.proj</c>, a Linear node after). Runs LibTorch's fused
/// <c>scaled_dot_product_attention</c> with the scale 1/√(C / Heads).
/// </summary>
public sealed record SelfAttentionOp(int Heads) : Op
{
    /// <inheritdoc />
    public override string Kind => "SelfAttention";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 3, Kind);
        if (Heads < 1 || x[2] % (3L * Heads) != 0)
            throw Bad($"{Kind}: {x[2]} packed features are not 3 × {Heads} heads of equal width (shape [{string.Join(",", x)}])");
        return [x[0], x[1], x[2] / 3];
    }

    /// <summary>Two matrix products per head: queries × keys [T × D × T] and weights × values [T × T × D].</summary>
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => 2 * output[0] * output[1] * output[1] * output[2];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Attend(xs[0]));

    private Tensor Attend(Tensor qkv)
    {
        long n = qkv.shape[0], t = qkv.shape[1], c = qkv.shape[2] / 3, d = c / Heads;
        using var scope = NewDisposeScope();
        var parts = qkv.reshape(n, t, 3, Heads, d).permute(2, 0, 3, 1, 4).unbind(0);
        var heads = F.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        return heads.transpose(1, 2).reshape(n, t, c).MoveToOuterDisposeScope();
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        // Written with basic operators (ONNX's Attention exists only from opset 23): slice q, k, v from the packed
        // features, split heads, softmax(q·kᵀ·scale)·v, merge heads.
        var name = onnx.Node.Name;
        var x = onnx.Inputs[0];
        long c = onnx.InputShapes[0][2] / 3, d = c / Heads;
        string Part(int k, string what, long[] perm)
        {
            var slice = onnx.Emit("Slice", [x, onnx.Ints($"{name}.{what}_start", k * c), onnx.Ints($"{name}.{what}_end", (k + 1) * c), onnx.Ints($"{name}.{what}_axes", 2)],
                onnx.Fresh($"{name}_{what}"));
            var split = onnx.Emit("Reshape", [slice, onnx.Ints($"{name}.{what}_shape", 0, 0, Heads, d)], onnx.Fresh($"{name}_{what}_heads"));
            return onnx.Emit("Transpose", [split], onnx.Fresh($"{name}_{what}_t"), Attr("perm", perm));
        }
        var q = Part(0, "q", [0, 2, 1, 3]);
        var kT = Part(1, "k", [0, 2, 3, 1]);
        var v = Part(2, "v", [0, 2, 1, 3]);
        var scores = onnx.Emit("MatMul", [q, kT], onnx.Fresh(name + "_scores"));
        var scaled = onnx.Emit("Mul", [scores, onnx.Scalar(name + ".scale", 1 / Math.Sqrt(d))], onnx.Fresh(name + "_scaled"));
        var weights = onnx.Emit("Softmax", [scaled], onnx.Fresh(name + "_weights"), Attr("axis", -1));
        var heads = onnx.Emit("MatMul", [weights, v], onnx.Fresh(name + "_heads"));
        var merged = onnx.Emit("Transpose", [heads], onnx.Fresh(name + "_merged"), Attr("perm", [0L, 2, 1, 3]));
        onnx.Out("Reshape", [merged, onnx.Ints(name + ".shape", 0, 0, c)]);
    }

    /// <inheritdoc />
    public override string Describe() => $"{Heads} heads";
}
