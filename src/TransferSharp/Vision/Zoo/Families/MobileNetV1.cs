using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// MobileNet v1 (Howard et al. 2017), as timm builds it (<c>mobilenetv1_100</c>, an EfficientNet-style
/// graph): a 3×3 stride-2 stem, then depthwise-separable blocks (3×3 depthwise → BN → ReLU6 → 1×1
/// pointwise → BN → ReLU6, no residual), five stages, no head convolution: pooled features are the
/// 1024 channels of the last block.
/// </summary>
public static class MobileNetV1
{
    // Per stage: output channels, number of blocks, stride of the first block (timm's "dsa" arch_def).
    private static readonly (int Channels, int Blocks, int Stride)[] Stages =
        [(64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2)];

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("mobilenet_v1", "MobileNet", "timm", "mobilenetv1_100", ["MobileNet"], 224, Build);
    }

    /// <summary>Builds the MobileNet v1 graph (width multiplier 1.0).</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("mobilenet_v1", o, 224);
        // timm's BatchNormAct2d holds the activation as a child "act": its node carries that path.
        var x = b.ConvBnAct(b.Input, "conv_stem", "bn1", 32, 3, 2, PadSpec.Symmetric(1), ActivationKind.Relu6, actName: "bn1.act");
        for (int s = 0; s < Stages.Length; s++)
        {
            var (channels, blocks, firstStride) = Stages[s];
            for (int i = 0; i < blocks; i++)
            {
                var block = $"blocks.{s}.{i}";
                using (b.Scope(block))
                {
                    x = b.ConvBnAct(x, "conv_dw", "bn1", x.Channels, 3, i == 0 ? firstStride : 1, PadSpec.Symmetric(1),
                        ActivationKind.Relu6, groups: x.Channels, actName: "bn1.act");
                    x = b.ConvBnAct(x, "conv_pw", "bn2", channels, 1, 1, PadSpec.None, act: null);
                }
                x = b.Relu6(x, block); // bn2's activation ends the block: the node carries the block's name, for taps
            }
        }
        var output = ModelZoo.PoolAndClassify(b, x, o, "classifier");
        b.Group("stem", "conv_stem", "bn1");
        for (int s = 0; s < Stages.Length; s++) b.Group($"stage{s + 1}", $"blocks.{s}");
        b.Group("head", "global_pool", "classifier");
        return b.Build(output);
    }
}
