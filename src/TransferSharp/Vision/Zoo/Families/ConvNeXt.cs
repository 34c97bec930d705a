using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// ConvNeXt (Liu et al. 2022), as timm builds it: a 4×4 patchify stem, four stages of blocks (7×7 depthwise conv →
/// LayerNorm and an MLP on channels-last values → LayerScale → residual), LayerNorm + 2×2 strided conv between stages,
/// and a head that pools, normalises and classifies. Names are timm's ("stages.1.blocks.0.mlp.fc1"); torchvision's
/// checkpoints load through the loader's key map. Pooled features are timm's pre-logits (pooled, then head.norm).
/// </summary>
public static class ConvNeXt
{
    private sealed record Variant(string Name, string KerasName, int[] Depths, int[] Dims);

    private static readonly Variant[] Variants =
    [
        new("convnext_tiny", "ConvNeXtTiny", [3, 3, 9, 3], [96, 192, 384, 768]),
        new("convnext_small", "ConvNeXtSmall", [3, 3, 27, 3], [96, 192, 384, 768]),
        new("convnext_base", "ConvNeXtBase", [3, 3, 27, 3], [128, 256, 512, 1024]),
        new("convnext_large", "ConvNeXtLarge", [3, 3, 27, 3], [192, 384, 768, 1536]),
    ];

    // timm's ConvNeXt norms use eps 1e-6 (PyTorch's default is 1e-5); LayerScale starts at ls_init_value 1e-6.
    private const double Eps = 1e-6, LayerScaleInit = 1e-6;

    internal static IEnumerable<ZooEntry> Entries() =>
        Variants.Select(v => new ZooEntry(v.Name, "ConvNeXt", "timm", v.Name, [v.KerasName], 224, o => Build(v, o)));

    private static ModelGraph Build(Variant v, ModelOptions o)
    {
        var b = ModelZoo.Builder(v.Name, o, 224);
        var x = b.Conv(b.Input, "stem.0", v.Dims[0], 4, 4, 0, bias: true);
        x = b.Add(new LayerNormOp(v.Dims[0], Eps, ChannelsFirst: true), "stem.1", x);
        // timm's drop_path_rate: rising linearly from 0 over all blocks; 0 builds no DropPath nodes at all.
        double maxRate = o.DropPathRate ?? 0;
        int total = v.Depths.Sum(), index = 0;
        for (int i = 0; i < v.Depths.Length; i++)
        {
            if (i > 0)
            {
                x = b.Add(new LayerNormOp(x.Channels, Eps, ChannelsFirst: true), $"stages.{i}.downsample.0", x);
                x = b.Conv(x, $"stages.{i}.downsample.1", v.Dims[i], 2, 2, 0, bias: true);
            }
            for (int j = 0; j < v.Depths[i]; j++, index++)
                x = Block(b, x, $"stages.{i}.blocks.{j}", total > 1 ? maxRate * index / (total - 1) : 0);
        }
        var output = ModelZoo.PoolAndClassify(b, x, o, "head.fc", dropName: o.DropRate > 0 ? "head.drop" : null, poolName: "head.global_pool",
            pooledNorm: ("head.norm", new LayerNormOp(x.Channels, Eps, ChannelsFirst: true)));
        b.Group("stem", "stem");
        for (int i = 0; i < v.Depths.Length; i++) b.Group($"stage{i + 1}", $"stages.{i}");
        b.Group("head", "head");
        return b.Build(output);
    }

    /// <summary>One block. The LayerScale node carries the block's own name, so its parameter is timm's
    /// "stages.i.blocks.j.gamma" and the block's other modules are its children; the residual sum is "….add".</summary>
    private static Sym Block(GraphBuilder b, Sym x, string name, double dropPath)
    {
        int c = x.Channels;
        var y = b.Conv(x, name + ".conv_dw", c, 7, 1, 3, groups: c, bias: true);
        // timm's default (conv_mlp=False): norm and MLP on channels-last values, so fc1/fc2 are Linear weights.
        y = b.Add(new TransposeOp([0, 2, 3, 1]), name + ".channels_last", y);
        y = b.Add(new LayerNormOp(c, Eps), name + ".norm", y);
        y = b.Add(new LinearOp(c, 4 * c), name + ".mlp.fc1", y);
        y = b.Act(y, ActivationKind.Gelu, name + ".mlp.act");
        y = b.Add(new LinearOp(4 * c, c), name + ".mlp.fc2", y);
        y = b.Add(new TransposeOp([0, 3, 1, 2]), name + ".channels_first", y);
        y = b.Add(new LayerScaleOp(c, LayerScaleInit, ChannelsFirst: true), name, y);
        if (dropPath > 0) y = b.Add(new DropPathOp(dropPath), name + ".drop_path", y);
        return b.Sum(name + ".add", y, x);
    }
}
