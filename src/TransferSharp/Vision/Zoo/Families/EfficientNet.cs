using System.Globalization;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// EfficientNet B0–B7 (Tan &amp; Le 2019) and EfficientNetV2 S/M/L (Tan &amp; Le 2021) as torchvision builds them:
/// "features.N.M.block.K" MBConv blocks (1×1 expand → depthwise → squeeze-and-excitation with SiLU/sigmoid → 1×1
/// projection) and, in V2's first stages, FusedMBConv blocks (one full convolution instead of expand + depthwise, no
/// SE); SiLU throughout, stochastic
/// depth on the residual branches (its rate growing linearly with depth to 0.2, active in training only), head
/// "classifier.1" after dropout "classifier.0".
/// </summary>
public static class EfficientNet
{
    // torchvision's per-variant (width, depth, dropout, native size); B5–B7's weights come from TensorFlow, so
    // torchvision builds them with TensorFlow's BatchNorm (eps 1e-3, momentum 0.01).
    private static readonly (string Suffix, double Width, double Depth, double Dropout, int Size, bool TfNorm)[] V1Variants =
    [
        ("b0", 1.0, 1.0, 0.2, 224, false), ("b1", 1.0, 1.1, 0.2, 240, false), ("b2", 1.1, 1.2, 0.3, 288, false),
        ("b3", 1.2, 1.4, 0.3, 300, false), ("b4", 1.4, 1.8, 0.4, 380, false), ("b5", 1.6, 2.2, 0.4, 456, true),
        ("b6", 1.8, 2.6, 0.5, 528, true), ("b7", 2.0, 3.1, 0.5, 600, true),
    ];

    /// <summary>One stage: block kind (fused or not), expansion, kernel, first stride, input and output channels, repeats.</summary>
    private sealed record Stage(bool Fused, int Expand, int Kernel, int Stride, int In, int Out, int Layers);

    private static readonly Stage[] V1Stages =
    [
        new(false, 1, 3, 1, 32, 16, 1), new(false, 6, 3, 2, 16, 24, 2), new(false, 6, 5, 2, 24, 40, 2), new(false, 6, 3, 2, 40, 80, 3),
        new(false, 6, 5, 1, 80, 112, 3), new(false, 6, 5, 2, 112, 192, 4), new(false, 6, 3, 1, 192, 320, 1),
    ];

    private static readonly (string Suffix, double Dropout, int Size, Stage[] Stages)[] V2Variants =
    [
        ("s", 0.2, 384,
        [
            new(true, 1, 3, 1, 24, 24, 2), new(true, 4, 3, 2, 24, 48, 4), new(true, 4, 3, 2, 48, 64, 4),
            new(false, 4, 3, 2, 64, 128, 6), new(false, 6, 3, 1, 128, 160, 9), new(false, 6, 3, 2, 160, 256, 15),
        ]),
        ("m", 0.3, 480,
        [
            new(true, 1, 3, 1, 24, 24, 3), new(true, 4, 3, 2, 24, 48, 5), new(true, 4, 3, 2, 48, 80, 5),
            new(false, 4, 3, 2, 80, 160, 7), new(false, 6, 3, 1, 160, 176, 14), new(false, 6, 3, 2, 176, 304, 18),
            new(false, 6, 3, 1, 304, 512, 5),
        ]),
        ("l", 0.4, 480,
        [
            new(true, 1, 3, 1, 32, 32, 4), new(true, 4, 3, 2, 32, 64, 7), new(true, 4, 3, 2, 64, 96, 7),
            new(false, 4, 3, 2, 96, 192, 10), new(false, 6, 3, 1, 192, 224, 19), new(false, 6, 3, 2, 224, 384, 25),
            new(false, 6, 3, 1, 384, 640, 7),
        ]),
    ];

    internal static IEnumerable<ZooEntry> Entries()
    {
        foreach (var v in V1Variants)
        {
            var name = "efficientnet_" + v.Suffix;
            var stages = V1Stages.Select(s => s with
            {
                In = MakeDivisible(s.In * v.Width), Out = MakeDivisible(s.Out * v.Width), Layers = (int)Math.Ceiling(s.Layers * v.Depth),
            }).ToArray();
            var spec = new Spec(name, stages, LastChannels: null, v.Dropout, v.Size, v.TfNorm ? 1e-3 : 1e-5, v.TfNorm ? 0.01 : 0.1);
            yield return new ZooEntry(name, "EfficientNet", "torchvision", name, ["EfficientNet" + v.Suffix.ToUpperInvariant()], v.Size, o => Build(spec, o));
        }
        foreach (var v in V2Variants)
        {
            var name = "efficientnet_v2_" + v.Suffix;
            var spec = new Spec(name, v.Stages, LastChannels: 1280, v.Dropout, v.Size, 1e-3, 0.1);
            yield return new ZooEntry(name, "EfficientNetV2", "torchvision", name, ["EfficientNetV2" + v.Suffix.ToUpperInvariant()], v.Size, o => Build(spec, o));
        }
    }

    private sealed record Spec(string Name, Stage[] Stages, int? LastChannels, double Dropout, int Size, double BnEps, double BnMomentum);

    /// <summary>torchvision's <c>_make_divisible(v, 8)</c>: the nearest multiple of 8, never more than 10 % below v.</summary>
    internal static int MakeDivisible(double v, int divisor = 8, double roundLimit = 0.9)
    {
        int rounded = Math.Max(divisor, (int)(v + divisor / 2.0) / divisor * divisor);
        return rounded < roundLimit * v ? rounded + divisor : rounded;
    }

    private const double StochasticDepth = 0.2;

    private static ModelGraph Build(Spec spec, ModelOptions o)
    {
        var b = ModelZoo.Builder(spec.Name, o, spec.Size);
        Sym ConvBnAct(Sym x, string scope, int outChannels, int kernel, int stride = 1, int groups = 1, bool act = true)
        {
            using var _ = b.Scope(scope);
            return b.ConvBnAct(x, "0", "1", outChannels, kernel, stride, PadSpec.Symmetric((kernel - 1) / 2), act ? ActivationKind.Silu : null,
                spec.BnEps, groups, act ? "2" : null, spec.BnMomentum);
        }

        var x = ConvBnAct(b.Input, "features.0", spec.Stages[0].In, 3, 2);
        int total = spec.Stages.Sum(s => s.Layers), blockId = 0;
        for (int si = 0; si < spec.Stages.Length; si++)
        {
            var s = spec.Stages[si];
            for (int i = 0; i < s.Layers; i++)
            {
                int stride = i == 0 ? s.Stride : 1, inCh = i == 0 ? s.In : s.Out;
                int expanded = MakeDivisible(inCh * (double)s.Expand);
                var block = $"features.{si + 1}.{i}";
                var y = x;
                int k = 0;
                using (b.Scope(block + ".block"))
                {
                    string Next() => (k++).ToString(CultureInfo.InvariantCulture);
                    if (s.Fused)
                    {
                        if (expanded != inCh)
                        {
                            y = ConvBnAct(y, Next(), expanded, s.Kernel, stride);
                            y = ConvBnAct(y, Next(), s.Out, 1, act: false);
                        }
                        else y = ConvBnAct(y, Next(), s.Out, s.Kernel, stride);
                    }
                    else
                    {
                        if (expanded != inCh) y = ConvBnAct(y, Next(), expanded, 1);
                        y = ConvBnAct(y, Next(), expanded, s.Kernel, stride, groups: expanded);
                        y = b.SqueezeExcite(y, Next(), Math.Max(1, inCh / 4), ActivationKind.Silu, new ActivationOp(ActivationKind.Sigmoid));
                        y = ConvBnAct(y, Next(), s.Out, 1, act: false);
                    }
                }
                // torchvision's StochasticDepth("row") on the residual branch, its rate growing with the block's index.
                double dropPath = StochasticDepth * blockId++ / total;
                if (stride == 1 && inCh == s.Out)
                {
                    y = b.Add(new DropPathOp(dropPath), block + ".stochastic_depth", y);
                    x = b.Sum(block, y, x);
                }
                else x = b.Add(new IdentityOp(), block, y);
            }
        }
        int last = spec.LastChannels ?? 4 * spec.Stages[^1].Out;
        var head = $"features.{spec.Stages.Length + 1}";
        x = ConvBnAct(x, head, last, 1);
        var output = ModelZoo.PoolAndClassify(b, x, o, "classifier.1", spec.Dropout, "classifier.0");
        b.Group("stem", "features.0");
        for (int si = 0; si < spec.Stages.Length; si++)
        {
            var stage = $"features.{si + 1}";
            b.Group($"stage{si + 1}", si == spec.Stages.Length - 1 ? [stage, head] : [stage]);
        }
        b.Group("head", "global_pool", "classifier");
        return b.Build(output);
    }
}
