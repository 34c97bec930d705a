using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// VGG (Simonyan &amp; Zisserman 2014), as torchvision builds it: 3×3 convolutions with bias and ReLU,
/// five max-pooled blocks ("features.N"), a 7×7 adaptive average pool and three linear layers
/// ("classifier.0/3/6"). Pooled features are the global average of the last max-pool (512).
/// </summary>
public static class Vgg
{
    private const int M = 0;

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("vgg16", "VGG", "torchvision", "vgg16", ["VGG16"], 224,
            o => Build("vgg16", [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M], o));
        yield return new ZooEntry("vgg19", "VGG", "torchvision", "vgg19", ["VGG19"], 224,
            o => Build("vgg19", [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M], o));
    }

    /// <summary>Builds a VGG graph from its configuration (channel counts, 0 for a max-pool).</summary>
    public static ModelGraph Build(string name, int[] config, ModelOptions o)
    {
        var b = ModelZoo.Builder(name, o, 224);
        var x = b.Input;
        int index = 0, block = 1, blockStart = 0;
        var groups = new List<(string, string[])>();
        foreach (var c in config)
        {
            if (c == M)
            {
                x = b.MaxPool(x, 2, 2, name: $"features.{index++}");
                groups.Add(($"block{block++}", Enumerable.Range(blockStart, index - blockStart).Select(i => $"features.{i}").ToArray()));
                blockStart = index;
            }
            else
            {
                x = b.Conv(x, $"features.{index++}", c, 3, 1, PadSpec.Symmetric(1), bias: true);
                x = b.Relu(x, $"features.{index++}");
            }
        }
        b.Features(x);
        var h = b.Add(new AdaptiveAvgPool2dOp(7, 7), "avgpool", x);
        h = b.Flatten(h, "flatten");
        double drop = o.DropRate ?? 0.5;
        h = b.Relu(b.Linear(h, "classifier.0", 4096), "classifier.1");
        h = b.Dropout(h, drop, "classifier.2");
        h = b.Relu(b.Linear(h, "classifier.3", 4096), "classifier.4");
        h = b.Dropout(h, drop, "classifier.5");
        h = b.Head(h, o.NumClasses, "classifier.6");
        foreach (var (g, prefixes) in groups) b.Group(g, prefixes);
        b.Group("head", "avgpool", "flatten", "classifier");
        return b.Build(h);
    }
}
