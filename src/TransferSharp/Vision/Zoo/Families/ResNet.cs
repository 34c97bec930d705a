using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// ResNet (He et al. 2015), as torchvision builds it: a 7×7 stem, four stages of basic (18/34) or
/// bottleneck (50/101/152) blocks with the stride on the 3×3 convolution (ResNet v1.5), and a
/// linear classifier. timm's resnet* weights use the same names and load too.
/// </summary>
public static class ResNet
{
    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return Entry("resnet18", false, [2, 2, 2, 2], []);
        yield return Entry("resnet34", false, [3, 4, 6, 3], []);
        yield return Entry("resnet50", true, [3, 4, 6, 3], ["ResNet50"]);
        yield return Entry("resnet101", true, [3, 4, 23, 3], ["ResNet101"]);
        yield return Entry("resnet152", true, [3, 8, 36, 3], ["ResNet152"]);
    }

    private static ZooEntry Entry(string name, bool bottleneck, int[] depths, string[] aliases) =>
        new(name, "ResNet", "torchvision", name, aliases, 224, o => Build(name, bottleneck, depths, o));

    /// <summary>Builds a ResNet graph.</summary>
    public static ModelGraph Build(string name, bool bottleneck, int[] depths, ModelOptions o)
    {
        var b = ModelZoo.Builder(name, o, 224);
        var x = b.ConvBnAct(b.Input, "conv1", "bn1", 64, 7, 2, PadSpec.Symmetric(3), actName: "relu");
        x = b.MaxPool(x, 3, 2, PadSpec.Symmetric(1), name: "maxpool");
        int expansion = bottleneck ? 4 : 1;
        for (int stage = 0; stage < 4; stage++)
        {
            int planes = 64 << stage;
            for (int i = 0; i < depths[stage]; i++)
            {
                int stride = stage > 0 && i == 0 ? 2 : 1;
                var block = $"layer{stage + 1}.{i}";
                var scope = b.Scope(block);
                Sym y;
                if (bottleneck)
                {
                    y = b.ConvBnAct(x, "conv1", "bn1", planes, 1, 1, PadSpec.None);
                    y = b.ConvBnAct(y, "conv2", "bn2", planes, 3, stride, PadSpec.Symmetric(1));
                    y = b.ConvBnAct(y, "conv3", "bn3", planes * 4, 1, 1, PadSpec.None, act: null);
                }
                else
                {
                    y = b.ConvBnAct(x, "conv1", "bn1", planes, 3, stride, PadSpec.Symmetric(1));
                    y = b.ConvBnAct(y, "conv2", "bn2", planes, 3, 1, PadSpec.Symmetric(1), act: null);
                }
                var shortcut = x;
                if (stride != 1 || x.Channels != planes * expansion)
                    shortcut = b.ConvBnAct(x, "downsample.0", "downsample.1", planes * expansion, 1, stride, PadSpec.None, act: null);
                var sum = b.Sum("add", y, shortcut);
                scope.Dispose();
                x = b.Relu(sum, block); // the block's output carries the block's name, for feature taps
            }
        }
        var output = ModelZoo.PoolAndClassify(b, x, o, "fc");
        b.Group("stem", "conv1", "bn1", "relu", "maxpool");
        for (int s = 1; s <= 4; s++) b.Group($"layer{s}", $"layer{s}");
        b.Group("head", "global_pool", "fc");
        return b.Build(output);
    }
}
