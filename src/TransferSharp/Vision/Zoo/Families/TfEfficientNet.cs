using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// timm's TensorFlow ports of EfficientNet B0–B7 (<c>tf_efficientnet_b*</c>) and EfficientNetV2 B0–B3
/// (<c>tf_efficientnetv2_b*</c>): the blocks of TensorFlow's checkpoints under timm's names (conv_stem, bn1,
/// blocks.S.I.conv_pw/conv_dw/se.conv_reduce/se.conv_expand/conv_pwl, conv_head, bn2, classifier), TensorFlow's
/// BatchNorm epsilon 1e-3 and its "SAME" padding: computed from each input's size, so a stride-2 convolution pads
/// one more pixel at the bottom and right when the size is even, as timm's Conv2dSame does.
/// </summary>
public static class TfEfficientNet
{
    private enum Block { DepthwiseSeparable, InvertedResidual, EdgeResidual, ConvBnAct }

    /// <summary>A stage of timm's arch_def: block type, repeats, kernel, first stride, expansion, output channels, SE ratio.</summary>
    private sealed record Stage(Block Type, int Repeats, int Kernel, int Stride, int Expand, int Out, double SeRatio);

    // timm's _gen_efficientnet arch_def ('ds_r1_k3_s1_e1_c16_se0.25', 'ir_r2_k3_s2_e6_c24_se0.25', ...).
    private static readonly Stage[] V1Stages =
    [
        new(Block.DepthwiseSeparable, 1, 3, 1, 1, 16, 0.25), new(Block.InvertedResidual, 2, 3, 2, 6, 24, 0.25),
        new(Block.InvertedResidual, 2, 5, 2, 6, 40, 0.25), new(Block.InvertedResidual, 3, 3, 2, 6, 80, 0.25),
        new(Block.InvertedResidual, 3, 5, 1, 6, 112, 0.25), new(Block.InvertedResidual, 4, 5, 2, 6, 192, 0.25),
        new(Block.InvertedResidual, 1, 3, 1, 6, 320, 0.25),
    ];

    // timm's _gen_efficientnetv2_base ('cn_r1_k3_s1_e1_c16_skip', 'er_r2_k3_s2_e4_c32', ...).
    private static readonly Stage[] V2Stages =
    [
        new(Block.ConvBnAct, 1, 3, 1, 1, 16, 0), new(Block.EdgeResidual, 2, 3, 2, 4, 32, 0), new(Block.EdgeResidual, 2, 3, 2, 4, 48, 0),
        new(Block.InvertedResidual, 3, 3, 2, 4, 96, 0.25), new(Block.InvertedResidual, 5, 3, 1, 6, 112, 0.25),
        new(Block.InvertedResidual, 8, 3, 2, 6, 192, 0.25),
    ];

    // (channel multiplier, depth multiplier, native size): timm's pretrained input sizes (V2: the test size its
    // reported top-1 is measured at).
    private static readonly (double Width, double Depth, int Size)[] V1Variants =
        [(1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260), (1.2, 1.4, 300), (1.4, 1.8, 380), (1.6, 2.2, 456), (1.8, 2.6, 528), (2.0, 3.1, 600)];

    private static readonly (double Width, double Depth, int Size)[] V2Variants = [(1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260), (1.2, 1.4, 300)];

    internal static IEnumerable<ZooEntry> Entries()
    {
        for (int i = 0; i < V1Variants.Length; i++)
        {
            var (w, d, size) = V1Variants[i];
            var name = $"tf_efficientnet_b{i}";
            yield return new ZooEntry(name, "EfficientNet (TF)", "timm", name, [], size, o => Build(name, V1Stages, w, d, 0.9, size, o));
        }
        for (int i = 0; i < V2Variants.Length; i++)
        {
            var (w, d, size) = V2Variants[i];
            var name = $"tf_efficientnetv2_b{i}";
            // Keras' EfficientNetV2B0–B3 are these TensorFlow models.
            yield return new ZooEntry(name, "EfficientNetV2 (TF)", "timm", name, [$"EfficientNetV2B{i}"], size, o => Build(name, V2Stages, w, d, 0.0, size, o));
        }
    }

    private const double BnEps = 1e-3;

    // roundLimit: timm's round_channels limit, 0.9 for V1 (never 10 % under), 0 for V2 (plain nearest).
    private static ModelGraph Build(string name, Stage[] stages, double width, double depth, double roundLimit, int size, ModelOptions o)
    {
        int Round(double c) => EfficientNet.MakeDivisible(c * width, 8, roundLimit);
        var b = ModelZoo.Builder(name, o, size);
        static PadSpec Same(int kernel) => kernel == 1 ? PadSpec.None : PadSpec.Same;
        Sym ConvBn(Sym x, string conv, string bn, int outChannels, int kernel, int stride = 1, int groups = 1, bool act = true) =>
            b.ConvBnAct(x, conv, bn, outChannels, kernel, stride, Same(kernel), act ? ActivationKind.Silu : null, BnEps, groups, act ? bn + ".act" : null);

        var x = ConvBn(b.Input, "conv_stem", "bn1", Round(32), 3, 2);
        for (int si = 0; si < stages.Length; si++)
        {
            var s = stages[si];
            int outCh = Round(s.Out), repeats = (int)Math.Ceiling(s.Repeats * depth);
            for (int i = 0; i < repeats; i++)
            {
                int stride = i == 0 ? s.Stride : 1, inCh = x.Channels;
                var block = $"blocks.{si}.{i}";
                var y = x;
                using (b.Scope(block))
                {
                    // timm sizes SE from the block's input: the ratio divided by the expansion, applied to the mid channels.
                    Sym Se(Sym v) => s.SeRatio > 0
                        ? b.SqueezeExcite(v, "se", (int)Math.Round(v.Channels * (s.SeRatio / s.Expand)), ActivationKind.Silu,
                            new ActivationOp(ActivationKind.Sigmoid), "conv_reduce", "conv_expand")
                        : v;
                    switch (s.Type)
                    {
                        case Block.DepthwiseSeparable:
                            y = ConvBn(y, "conv_dw", "bn1", inCh, s.Kernel, stride, groups: inCh);
                            y = Se(y);
                            y = ConvBn(y, "conv_pw", "bn2", outCh, 1, act: false);
                            break;
                        case Block.InvertedResidual:
                            int mid = EfficientNet.MakeDivisible(inCh * (double)s.Expand);
                            y = ConvBn(y, "conv_pw", "bn1", mid, 1);
                            y = ConvBn(y, "conv_dw", "bn2", mid, s.Kernel, stride, groups: mid);
                            y = Se(y);
                            y = ConvBn(y, "conv_pwl", "bn3", outCh, 1, act: false);
                            break;
                        case Block.EdgeResidual:
                            y = ConvBn(y, "conv_exp", "bn1", EfficientNet.MakeDivisible(inCh * (double)s.Expand), s.Kernel, stride);
                            y = Se(y);
                            y = ConvBn(y, "conv_pwl", "bn2", outCh, 1, act: false);
                            break;
                        default:
                            y = ConvBn(y, "conv", "bn1", outCh, s.Kernel, stride);
                            break;
                    }
                }
                // timm's default drop_path_rate is 0 for these models: the residual is a plain sum.
                x = stride == 1 && inCh == outCh ? b.Sum(block, y, x) : b.Add(new IdentityOp(), block, y);
            }
        }
        x = ConvBn(x, "conv_head", "bn2", Round(1280), 1);
        var output = ModelZoo.PoolAndClassify(b, x, o, "classifier");
        b.Group("stem", "conv_stem", "bn1");
        for (int si = 0; si < stages.Length; si++)
            b.Group($"stage{si + 1}", si == stages.Length - 1 ? [$"blocks.{si}", "conv_head", "bn2"] : [$"blocks.{si}"]);
        b.Group("head", "global_pool", "classifier");
        return b.Build(output);
    }
}
