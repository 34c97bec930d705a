using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// Vision transformers (Dosovitskiy et al. 2021) as timm builds them (<c>timm/models/vision_transformer.py</c>): a
/// patch-embedding convolution whose grid becomes a token sequence, a class token, a learned position embedding
/// (resampled to other input sizes), pre-norm blocks of multi-head self-attention and a GELU MLP, a final LayerNorm, and
/// the class token as pre-logits. ViT-S/B/L with 16-pixel patches (<c>vit_*_patch16_224</c>), and DINOv2's (Oquab et al.
/// 2023) with 14-pixel patches, LayerScale and no classifier (<c>vit_*_patch14_dinov2</c>: native 518², any multiple of
/// 14), and DINOv2 with four register tokens (Darcet et al. 2024, <c>vit_*_patch14_reg4_dinov2</c>). Names are timm's
/// module paths: <c>cls_token</c>, <c>reg_token</c>, <c>blocks.N.norm1</c>, <c>blocks.N.attn.qkv</c>, <c>blocks.N.ls1</c>,
/// <c>blocks.N.mlp.fc1</c>, <c>norm</c>, <c>head</c>.
/// </summary>
public static class VisionTransformer
{
    /// <summary>One variant: width, depth, heads, patch size, native size, LayerScale (its initial value) and register
    /// tokens. DINOv2's checkpoints have no classifier: build them with <see cref="ModelOptions.NumClasses"/> 0 for timm's
    /// model, or with a new head to train.</summary>
    private sealed record Variant(string Name, int Width, int Depth, int Heads, int Patch, int NativeSize, double? LayerScale, int Registers = 0);

    private static readonly Variant[] Variants =
    [
        new("vit_small_patch16_224", 384, 12, 6, 16, 224, null),
        new("vit_base_patch16_224", 768, 12, 12, 16, 224, null),
        new("vit_large_patch16_224", 1024, 24, 16, 16, 224, null),
        new("vit_small_patch14_dinov2", 384, 12, 6, 14, 518, 1e-5),
        new("vit_base_patch14_dinov2", 768, 12, 12, 14, 518, 1e-5),
        new("vit_large_patch14_dinov2", 1024, 24, 16, 14, 518, 1e-5),
        new("vit_small_patch14_reg4_dinov2", 384, 12, 6, 14, 518, 1e-5, Registers: 4),
        new("vit_base_patch14_reg4_dinov2", 768, 12, 12, 14, 518, 1e-5, Registers: 4),
        new("vit_large_patch14_reg4_dinov2", 1024, 24, 16, 14, 518, 1e-5, Registers: 4),
    ];

    internal static IEnumerable<ZooEntry> Entries() =>
        Variants.Select(v => new ZooEntry(v.Name, v.LayerScale is null ? "ViT" : "DINOv2", "timm", v.Name, [], v.NativeSize, o => Build(v, o)));

    private static ModelGraph Build(Variant v, ModelOptions o)
    {
        var options = o;
        var b = ModelZoo.Builder(v.Name, options, v.NativeSize);
        int c = v.Width;
        var grid = b.Conv(b.Input, "patch_embed.proj", c, v.Patch, v.Patch, PadSpec.None, bias: true);
        var x = b.Add(new FlattenOp(2), "patch_embed.flatten", grid);
        x = b.Add(new TransposeOp([0, 2, 1]), "patch_embed", x);
        // The embedding keeps the native grid, so a checkpoint loads at any input size; other grids resample it.
        int nativeGrid = v.NativeSize / v.Patch, prefix = 1 + v.Registers;
        if (v.Registers == 0)
        {
            x = b.Add(new PrefixTokensOp(1, c), "cls_token", x);
            x = b.Add(new PositionEmbeddingOp(c, nativeGrid, nativeGrid, PrefixTokens: 1), "pos_embed", x, grid);
        }
        else
        {
            // timm's register models use no_embed_class: the embedding covers the patch grid only and is added before the
            // class and register tokens go in front ([cls, reg × 4, patches]); timm holds cls_token, reg_token, pos_embed in
            // that order.
            x = b.Add(new PositionEmbeddingOp(c, nativeGrid, nativeGrid, PrefixTokens: 0), "pos_embed", x, grid);
            x = b.Add(new PrefixTokensOp(v.Registers, c), "reg_token", x);
            x = b.Add(new PrefixTokensOp(1, c), "cls_token", x);
            b.RegisterBefore("cls_token", "pos_embed");
            b.RegisterBefore("reg_token", "pos_embed");
        }
        // timm's drop_path_rate: rising linearly from 0 at the first block to the rate at the last; 0 builds none.
        double maxDropPath = options.DropPathRate ?? 0;
        var stages = new List<string>[4];
        for (int s = 0; s < 4; s++) stages[s] = [];
        for (int i = 0; i < v.Depth; i++)
        {
            var block = $"blocks.{i}";
            stages[i * 4 / v.Depth].Add(block);
            var scope = b.Scope(block);
            double dropPath = v.Depth > 1 ? maxDropPath * i / (v.Depth - 1) : 0;
            var y = b.Add(new LayerNormOp(c, 1e-6), "norm1", x);
            y = b.Linear(y, "attn.qkv", 3 * c);
            y = b.Add(new SelfAttentionOp(v.Heads), "attn", y);
            y = b.Linear(y, "attn.proj", c);
            if (v.LayerScale is { } ls1) y = b.Add(new LayerScaleOp(c, ls1), "ls1", y);
            if (dropPath > 0) y = b.Add(new DropPathOp(dropPath), "drop_path1", y);
            x = b.Sum("residual1", x, y);
            y = b.Add(new LayerNormOp(c, 1e-6), "norm2", x);
            y = b.Linear(y, "mlp.fc1", 4 * c);
            y = b.Act(y, ActivationKind.Gelu, "mlp.act");
            y = b.Linear(y, "mlp.fc2", c);
            if (v.LayerScale is { } ls2) y = b.Add(new LayerScaleOp(c, ls2), "ls2", y);
            if (dropPath > 0) y = b.Add(new DropPathOp(dropPath), "drop_path2", y);
            scope.Dispose();
            // The block's output carries the block's name, so a tap at "blocks.N" reads what timm's blocks[N] returns.
            x = b.Sum(block, x, y);
        }
        x = b.Add(new LayerNormOp(c, 1e-6), "norm", x);
        b.Features(x);
        x = b.Add(new TokenPoolOp(TokenPoolKind.Class, PrefixTokens: prefix), "global_pool", x);
        if (options.DropRate is > 0) x = b.Dropout(x, options.DropRate.Value, "head_drop");
        var output = b.Head(x, options.NumClasses, "head");
        string[] stem = v.Registers == 0 ? ["patch_embed", "cls_token", "pos_embed"] : ["patch_embed", "cls_token", "reg_token", "pos_embed"];
        b.Group("stem", stem);
        for (int s = 0; s < 4; s++) b.Group($"stage{s + 1}", s == 3 ? [.. stages[s], "norm"] : [.. stages[s]]);
        b.Group(ModelGraph.HeadGroup, "global_pool", "head_drop", "head");
        return b.Build(output);
    }
}
