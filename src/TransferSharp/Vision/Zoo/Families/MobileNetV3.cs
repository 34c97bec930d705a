using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// MobileNetV3 Small and Large (Howard et al. 2019) as torchvision builds them: inverted residual blocks
/// "features.N.block.K" with ReLU or Hardswish, squeeze-and-excitation (ReLU, then PyTorch's hardsigmoid gate) on some,
/// BatchNorm eps 1e-3 / momentum 0.01, and an MLP head: pooled features → "classifier.0" (linear) → Hardswish →
/// dropout → "classifier.3".
/// </summary>
public static class MobileNetV3
{
    /// <summary>torchvision's bneck_conf rows: input, kernel, expanded, output channels, SE, Hardswish, stride.</summary>
    private sealed record Block(int In, int Kernel, int Expanded, int Out, bool Se, bool Hardswish, int Stride);

    private static readonly Block[] Large =
    [
        new(16, 3, 16, 16, false, false, 1), new(16, 3, 64, 24, false, false, 2), new(24, 3, 72, 24, false, false, 1),
        new(24, 5, 72, 40, true, false, 2), new(40, 5, 120, 40, true, false, 1), new(40, 5, 120, 40, true, false, 1),
        new(40, 3, 240, 80, false, true, 2), new(80, 3, 200, 80, false, true, 1), new(80, 3, 184, 80, false, true, 1),
        new(80, 3, 184, 80, false, true, 1), new(80, 3, 480, 112, true, true, 1), new(112, 3, 672, 112, true, true, 1),
        new(112, 5, 672, 160, true, true, 2), new(160, 5, 960, 160, true, true, 1), new(160, 5, 960, 160, true, true, 1),
    ];

    private static readonly Block[] Small =
    [
        new(16, 3, 16, 16, true, false, 2), new(16, 3, 72, 24, false, false, 2), new(24, 3, 88, 24, false, false, 1),
        new(24, 5, 96, 40, true, true, 2), new(40, 5, 240, 40, true, true, 1), new(40, 5, 240, 40, true, true, 1),
        new(40, 5, 120, 48, true, true, 1), new(48, 5, 144, 48, true, true, 1), new(48, 5, 288, 96, true, true, 2),
        new(96, 5, 576, 96, true, true, 1), new(96, 5, 576, 96, true, true, 1),
    ];

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("mobilenet_v3_large", "MobileNetV3", "torchvision", "mobilenet_v3_large", ["MobileNetV3Large"], 224,
            o => Build("mobilenet_v3_large", Large, 1280, o));
        yield return new ZooEntry("mobilenet_v3_small", "MobileNetV3", "torchvision", "mobilenet_v3_small", ["MobileNetV3Small"], 224,
            o => Build("mobilenet_v3_small", Small, 1024, o));
    }

    private const double BnEps = 1e-3, BnMomentum = 0.01;

    private static ModelGraph Build(string name, Block[] blocks, int lastChannel, ModelOptions o)
    {
        var b = ModelZoo.Builder(name, o, 224);
        Sym ConvBnAct(Sym x, string scope, int outChannels, int kernel, int stride = 1, int groups = 1, ActivationKind? act = null)
        {
            using var _ = b.Scope(scope);
            return b.ConvBnAct(x, "0", "1", outChannels, kernel, stride, PadSpec.Symmetric((kernel - 1) / 2), act, BnEps, groups,
                act is null ? null : "2", BnMomentum);
        }

        var x = ConvBnAct(b.Input, "features.0", blocks[0].In, 3, 2, act: ActivationKind.HardSwish);
        // Layer groups: the stem, then one stage per resolution (a stride-2 block starts the next).
        var stages = new List<List<string>> { new() };
        for (int i = 0; i < blocks.Length; i++)
        {
            var c = blocks[i];
            var act = c.Hardswish ? ActivationKind.HardSwish : ActivationKind.Relu;
            var block = $"features.{i + 1}";
            if (c.Stride == 2 && stages[^1].Count > 0) stages.Add([]);
            stages[^1].Add(block);
            var y = x;
            int k = 0;
            using (b.Scope(block + ".block"))
            {
                if (c.Expanded != c.In) y = ConvBnAct(y, $"{k++}", c.Expanded, 1, act: act);
                y = ConvBnAct(y, $"{k++}", c.Expanded, c.Kernel, c.Stride, c.Expanded, act);
                if (c.Se)
                    y = b.SqueezeExcite(y, $"{k++}", EfficientNet.MakeDivisible(c.Expanded / 4), ActivationKind.Relu,
                        ActivationOp.TorchHardSigmoid);
                y = ConvBnAct(y, $"{k++}", c.Out, 1);
            }
            x = c.Stride == 1 && c.In == c.Out ? b.Sum(block, y, x) : b.Add(new IdentityOp(), block, y);
        }
        var last = $"features.{blocks.Length + 1}";
        x = ConvBnAct(x, last, 6 * blocks[^1].Out, 1, act: ActivationKind.HardSwish);
        b.Features(x);
        var pooled = b.GlobalPool(x, PoolKind.Avg, keepDims: false, name: "avgpool");
        var hidden = b.Act(b.Linear(pooled, "classifier.0", lastChannel), ActivationKind.HardSwish, "classifier.1");
        hidden = b.Dropout(hidden, o.DropRate ?? 0.2, "classifier.2");
        var output = b.Head(hidden, o.NumClasses, "classifier.3");
        b.Group("stem", "features.0");
        for (int s = 0; s < stages.Count; s++)
            b.Group($"stage{s + 1}", s == stages.Count - 1 ? [.. stages[s], last] : [.. stages[s]]);
        b.Group("head", "avgpool", "classifier");
        return b.Build(output);
    }
}
