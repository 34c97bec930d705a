using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// Multi-head scaled dot-product self-attention on packed queries, keys and values: the input is the output of a
/// transformer's qkv projection [N, T, 3C] (timm's <c>attn.qkv</c>, a Linear node before this one), laid out as timm's
/// <c>Attention</c> reshapes it ([N, T, 3, Heads, C / Heads]); the output [N, T, C] is the heads concatenated, before the
/// output projection (<c>attn.proj</c>, a Linear node after). Runs LibTorch's fused
/// <c>scaled_dot_product_attention</c> with the scale 1/√(C / Heads). An optional second input is a key mask [N, T]
/// (a text encoder's <c>attention_mask</c>, of any element type): keys where it is 0 (padding) take no part, as the
/// additive −10000 (or dtype minimum) of Hugging Face's BERT makes them; every query row must keep at least one key.
/// </summary>
public sealed record SelfAttentionOp(int Heads) : Op
{
    /// <inheritdoc />
    public override string Kind => "SelfAttention";

    /// <summary>The packed queries, keys and values, and optionally the key mask.</summary>
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        RequireRank(x, 3, Kind);
        if (Heads < 1 || x[2] % (3L * Heads) != 0)
            throw Bad($"{Kind}: {x[2]} packed features are not 3 × {Heads} heads of equal width (shape [{string.Join(",", x)}])");
        if (inputs.Count > 2) throw Bad($"{Kind} takes the packed features and an optional key mask, got {inputs.Count} inputs");
        if (inputs.Count == 2 && (inputs[1].Length != 2 || inputs[1][1] != x[1] || (inputs[1][0] != x[0] && inputs[1][0] != 1)))
            throw Bad($"{Kind}: the key mask [{string.Join(",", inputs[1])}] is not [N, T] for features [{string.Join(",", x)}]");
        return [x[0], x[1], x[2] / 3];
    }

    /// <summary>Two matrix products per head: queries × keys [T × D × T] and weights × values [T × T × D].</summary>
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => 2 * output[0] * output[1] * output[1] * output[2];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Attend(xs[0], xs.Count > 1 ? xs[1] : null));

    private Tensor Attend(Tensor qkv, Tensor? keyMask)
    {
        long n = qkv.shape[0], t = qkv.shape[1], c = qkv.shape[2] / 3, d = c / Heads;
        using var scope = NewDisposeScope();
        var parts = qkv.reshape(n, t, 3, Heads, d).permute(2, 0, 3, 1, 4).unbind(0);
        // A boolean mask [N, 1, 1, T]: true keys take part (the fused kernel adds −∞ to the others).
        var mask = keyMask is null ? null : keyMask.ne(0).reshape(keyMask.shape[0], 1, 1, t);
        var heads = F.scaled_dot_product_attention(parts[0], parts[1], parts[2], attn_mask: mask);
        return heads.transpose(1, 2).reshape(n, t, c).MoveToOuterDisposeScope();
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        // Written with basic operators (ONNX's Attention exists only from opset 23) in the pattern Hugging Face's BERT
        // export has, which ONNX Runtime's optimiser recognises (transposed-key and scale folded into one FusedMatMul):
        // q, k, v [N, T, C] split into heads, softmax(q·kᵀ / √d + mask)·v, heads merged. When the packed features are the
        // concatenation of three projections (the BERT family's separate query, key and value), the projections are read
        // directly and the concatenation is left out of the file; else q, k and v are sliced from the packed features.
        var name = onnx.Node.Name;
        long c = onnx.InputShapes[0][2] / 3, d = c / Heads;
        var packed = onnx.Graph.Node(onnx.Node.Inputs[0]);
        bool separate = packed.Op is ConcatOp concat && (concat.Axis == 2 || concat.Axis == -1) && packed.Inputs.Count == 3
            && packed.Inputs.All(i => onnx.Graph.Shapes[i] is { Length: 3 } shape && shape[2] == c);
        string Part(int k, string what, long[] perm)
        {
            var part = separate ? onnx.ValueOf(packed.Inputs[k])
                : onnx.Emit("Slice", [onnx.Inputs[0], onnx.Ints($"{name}.{what}_start", k * c), onnx.Ints($"{name}.{what}_end", (k + 1) * c), onnx.Ints($"{name}.{what}_axes", 2)],
                    onnx.Fresh($"{name}_{what}"));
            var split = onnx.Emit("Reshape", [part, onnx.Ints($"{name}.{what}_shape", 0, 0, Heads, d)], onnx.Fresh($"{name}_{what}_heads"));
            return onnx.Emit("Transpose", [split], onnx.Fresh($"{name}_{what}_t"), Attr("perm", perm));
        }
        var q = Part(0, "q", [0, 2, 1, 3]);
        var kT = Part(1, "k", [0, 2, 3, 1]);
        var v = Part(2, "v", [0, 2, 1, 3]);
        var scores = onnx.Emit("MatMul", [q, kT], onnx.Fresh(name + "_scores"));
        var scaled = onnx.Emit("Div", [scores, onnx.Scalar(name + ".sqrt_d", Math.Sqrt(d))], onnx.Fresh(name + "_scaled"));
        if (onnx.Inputs.Count > 1)
        {
            // Hugging Face's exported form: (1 − mask) · −10000 added to the scores, broadcast over heads and queries.
            var mask = onnx.Emit("Cast", [onnx.Inputs[1]], onnx.Fresh(name + "_mask"), Attr("to", 1L));
            var dropped = onnx.Emit("Sub", [onnx.Scalar(name + ".one", 1), mask], onnx.Fresh(name + "_dropped"));
            var additive = onnx.Emit("Mul", [dropped, onnx.Scalar(name + ".masked", -10000)], onnx.Fresh(name + "_additive"));
            var wide = onnx.Emit("Unsqueeze", [additive, onnx.Ints(name + ".mask_axes", 1, 2)], onnx.Fresh(name + "_additive_wide"));
            scaled = onnx.Emit("Add", [scaled, wide], onnx.Fresh(name + "_masked_scores"));
        }
        var weights = onnx.Emit("Softmax", [scaled], onnx.Fresh(name + "_weights"), Attr("axis", -1));
        var heads = onnx.Emit("MatMul", [weights, v], onnx.Fresh(name + "_heads"));
        var merged = onnx.Emit("Transpose", [heads], onnx.Fresh(name + "_merged"), Attr("perm", [0L, 2, 1, 3]));
        onnx.Out("Reshape", [merged, onnx.Ints(name + ".shape", 0, 0, c)]);
    }

    /// <inheritdoc />
    public override string Describe() => $"{Heads} heads";
}
