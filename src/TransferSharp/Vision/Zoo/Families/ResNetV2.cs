using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// Pre-activation ResNet (He et al. 2016, "v2"), as timm's <c>ResNetV2</c> builds it: a 7×7 stem
/// without norm, bottleneck blocks that normalise and activate their input first (norm1 → conv1 →
/// norm2 → conv2 (stride) → norm3 → conv3, plus the shortcut, projected from the pre-activated input in
/// each stage's first block), and a final norm + ReLU before pooling. The classifier "head.fc" is a
/// 1×1 convolution on the pooled map, so its weight is [classes, features, 1, 1].
/// Two flavours: resnetv2_50/101 use plain convolutions and BatchNorm; BiT (Kolesnikov et al. 2019)
/// uses weight-standardised convolutions (eps 1e-8), GroupNorm with 32 groups, a width factor, and the
/// "fixed" stem padding (zero-pad 1, then an unpadded 3×3 stride-2 max-pool).
/// </summary>
public static class ResNetV2
{
    /// <summary>Weight-standardisation epsilon of timm's BiT models (StdConv2d with eps=1e-8).</summary>
    public const double BitWeightStandardizationEps = 1e-8;

    /// <summary>How a ResNetV2 variant is built.</summary>
    /// <param name="Depths">Blocks per stage.</param>
    /// <param name="WidthFactor">Multiplies every channel count (BiT's ×1, ×2, …).</param>
    /// <param name="Bit">BiT: weight-standardised convolutions, GroupNorm(32), fixed stem padding.</param>
    public sealed record Config(int[] Depths, int WidthFactor = 1, bool Bit = false);

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return Entry("resnetv2_50", new Config([3, 4, 6, 3]), ["ResNet50V2"]);
        yield return Entry("resnetv2_101", new Config([3, 4, 23, 3]), ["ResNet101V2"]);
        yield return Entry("resnetv2_50x1_bit", new Config([3, 4, 6, 3], 1, Bit: true), []);
        yield return Entry("resnetv2_101x1_bit", new Config([3, 4, 23, 3], 1, Bit: true), []);
        yield return Entry("resnetv2_152x2_bit", new Config([3, 8, 36, 3], 2, Bit: true), []);
    }

    private static ZooEntry Entry(string name, Config config, string[] aliases) =>
        new(name, config.Bit ? "ResNetV2-BiT" : "ResNetV2", "timm", name, aliases, 224, o => Build(name, config, o));

    /// <summary>Builds a ResNetV2 graph.</summary>
    public static ModelGraph Build(string name, Config config, ModelOptions o)
    {
        var b = ModelZoo.Builder(name, o, 224);
        int wf = config.WidthFactor;
        double? wsEps = config.Bit ? BitWeightStandardizationEps : null;

        Sym Conv(Sym x, string convName, int outChannels, int kernel, int stride = 1) =>
            b.Conv(x, convName, outChannels, kernel, stride, PadSpec.Symmetric((stride - 1 + kernel - 1) / 2), weightStandardizationEps: wsEps);

        // timm's norm-act layers (GroupNormAct / BatchNormAct2d) keep the ReLU as a child "act".
        Sym NormAct(Sym x, string normName)
        {
            x = config.Bit ? b.GroupNorm(x, normName, 32) : b.BatchNorm(x, normName);
            return b.Relu(x, normName + ".act");
        }

        var x = Conv(b.Input, "stem.conv", 64 * wf, 7, 2);
        if (config.Bit)
        {
            // BiT approximates TF "SAME" with a fixed zero pad; zeros (not -inf) can win the max.
            x = b.Pad(x, 1, 1, 1, 1, "stem.pad");
            x = b.MaxPool(x, 3, 2, PadSpec.None, name: "stem.pool");
        }
        else x = b.MaxPool(x, 3, 2, PadSpec.Symmetric(1), name: "stem.pool");

        int[] stageChannels = [256, 512, 1024, 2048];
        for (int s = 0; s < config.Depths.Length; s++)
        {
            int outChannels = stageChannels[s] * wf, mid = outChannels / 4;
            for (int i = 0; i < config.Depths[s]; i++)
            {
                int stride = s > 0 && i == 0 ? 2 : 1;
                var block = $"stages.{s}.blocks.{i}";
                Sym y, shortcut;
                using (b.Scope(block))
                {
                    var preact = NormAct(x, "norm1");
                    shortcut = x;
                    if (i == 0)
                    {
                        shortcut = Conv(preact, "downsample.conv", outChannels, 1, stride);
                        b.RegisterBefore(block + ".downsample", block + ".norm1"); // timm declares it first
                    }
                    y = Conv(preact, "conv1", mid, 1);
                    y = Conv(NormAct(y, "norm2"), "conv2", mid, 3, stride);
                    y = Conv(NormAct(y, "norm3"), "conv3", outChannels, 1);
                }
                x = b.Sum(block, y, shortcut); // the block's output carries the block's name, for taps
            }
        }
        x = NormAct(x, "norm");
        var output = ModelZoo.PoolAndClassify(b, x, o, "head.fc", weightAs1x1Conv: true);

        b.Group("stem", "stem");
        for (int s = 0; s < config.Depths.Length; s++)
            b.Group($"stage{s + 1}", s == config.Depths.Length - 1 ? [$"stages.{s}", "norm"] : [$"stages.{s}"]);
        b.Group("head", "global_pool", "head");
        return b.Build(output);
    }
}
