using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// MobileNetV2 (Sandler et al. 2018), as torchvision builds it: inverted residual blocks
/// (1×1 expand → 3×3 depthwise → 1×1 linear projection) with ReLU6, names "features.N.conv.M".
/// </summary>
public static class MobileNetV2
{
    // expansion t, output channels c, repeats n, first stride s
    private static readonly int[][] Settings =
    [
        [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
    ];

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("mobilenet_v2", "MobileNetV2", "torchvision", "mobilenet_v2", ["MobileNetV2"], 224, Build);
    }

    /// <summary>Builds the MobileNetV2 graph (width multiplier 1.0).</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("mobilenet_v2", o, 224);
        var x = b.ConvBnAct(b.Input, "features.0.0", "features.0.1", 32, 3, 2, PadSpec.Symmetric(1), ActivationKind.Relu6, actName: "features.0.2");
        int index = 1;
        var stageGroups = new List<string[]>();
        foreach (var s in Settings)
        {
            var members = new List<string>();
            for (int i = 0; i < s[2]; i++)
            {
                int stride = i == 0 ? s[3] : 1;
                int hidden = x.Channels * s[0];
                var block = $"features.{index++}";
                members.Add(block);
                var scope = b.Scope(block + ".conv");
                var y = x;
                int m = 0;
                if (s[0] != 1)
                {
                    y = b.ConvBnAct(y, $"{m}.0", $"{m}.1", hidden, 1, 1, PadSpec.None, ActivationKind.Relu6);
                    m++;
                }
                y = b.ConvBnAct(y, $"{m}.0", $"{m}.1", hidden, 3, stride, PadSpec.Symmetric(1), ActivationKind.Relu6, groups: hidden);
                m++;
                y = b.Conv(y, $"{m}", s[1], 1, 1, PadSpec.None);
                y = b.BatchNorm(y, $"{m + 1}");
                scope.Dispose();
                x = stride == 1 && x.Channels == s[1] ? b.Sum(block, x, y) : b.Add(new IdentityOp(), block, y);
            }
            stageGroups.Add([.. members]);
        }
        x = b.ConvBnAct(x, "features.18.0", "features.18.1", 1280, 1, 1, PadSpec.None, ActivationKind.Relu6, actName: "features.18.2");
        var output = ModelZoo.PoolAndClassify(b, x, o, "classifier.1", 0.2, "classifier.0");
        b.Group("stem", "features.0");
        for (int i = 0; i < stageGroups.Count; i++)
        {
            var prefixes = stageGroups[i];
            if (i == stageGroups.Count - 1) prefixes = [.. prefixes, "features.18"];
            b.Group($"stage{i + 1}", prefixes);
        }
        b.Group("head", "global_pool", "classifier");
        return b.Build(output);
    }
}
