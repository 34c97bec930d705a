using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// DenseNet (Huang et al. 2016), as torchvision builds it: each dense layer (BN-ReLU-1×1-BN-ReLU-3×3)
/// reads the concatenation of every earlier feature map of its block; transitions halve channels
/// and resolution. Pooled features are ReLU(features) averaged.
/// </summary>
public static class DenseNet
{
    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return Entry("densenet121", 32, [6, 12, 24, 16], 64, "DenseNet121");
        yield return Entry("densenet169", 32, [6, 12, 32, 32], 64, "DenseNet169");
        yield return Entry("densenet201", 32, [6, 12, 48, 32], 64, "DenseNet201");
    }

    private static ZooEntry Entry(string name, int growth, int[] blocks, int initFeatures, string alias) =>
        new(name, "DenseNet", "torchvision", name, [alias], 224, o => Build(name, growth, blocks, initFeatures, 4, o));

    /// <summary>Builds a DenseNet graph.</summary>
    public static ModelGraph Build(string name, int growth, int[] blocks, int initFeatures, int bnSize, ModelOptions o)
    {
        var b = ModelZoo.Builder(name, o, 224);
        var x = b.ConvBnAct(b.Input, "features.conv0", "features.norm0", initFeatures, 7, 2, PadSpec.Symmetric(3), actName: "features.relu0");
        x = b.MaxPool(x, 3, 2, PadSpec.Symmetric(1), name: "features.pool0");
        for (int i = 0; i < blocks.Length; i++)
        {
            var features = new List<Sym> { x };
            for (int l = 1; l <= blocks[i]; l++)
            {
                using var _ = b.Scope($"features.denseblock{i + 1}.denselayer{l}");
                var input = features.Count == 1 ? features[0] : b.Concat("cat", [.. features]);
                var y = b.Relu(b.BatchNorm(input, "norm1"), "relu1");
                y = b.ConvBnAct(y, "conv1", "norm2", bnSize * growth, 1, 1, PadSpec.None, actName: "relu2");
                y = b.Conv(y, "conv2", growth, 3, 1, PadSpec.Symmetric(1));
                features.Add(y);
            }
            x = b.Concat($"features.denseblock{i + 1}", [.. features]);
            if (i != blocks.Length - 1)
            {
                using var _ = b.Scope($"features.transition{i + 1}");
                x = b.Relu(b.BatchNorm(x, "norm"), "relu");
                x = b.Conv(x, "conv", x.Channels / 2, 1, 1, PadSpec.None);
                x = b.AvgPool(x, 2, 2, name: "pool");
            }
        }
        x = b.Relu(b.BatchNorm(x, "features.norm5"), "features.relu5");
        var output = ModelZoo.PoolAndClassify(b, x, o, "classifier");
        b.Group("stem", "features.conv0", "features.norm0", "features.relu0", "features.pool0");
        for (int i = 1; i <= blocks.Length; i++)
        {
            var prefixes = new List<string> { $"features.denseblock{i}" };
            if (i < blocks.Length) prefixes.Add($"features.transition{i}");
            else prefixes.AddRange(["features.norm5", "features.relu5"]);
            b.Group($"block{i}", [.. prefixes]);
        }
        b.Group("head", "global_pool", "classifier");
        return b.Build(output);
    }
}
