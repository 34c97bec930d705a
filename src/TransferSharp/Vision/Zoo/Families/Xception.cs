using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// Xception (Chollet 2016), as timm's <c>legacy_xception</c> builds it (the Keras ImageNet weights,
/// ported): an unpadded two-convolution stem, twelve residual blocks of separable convolutions
/// (3×3 depthwise then 1×1 pointwise, no bias, BN after each pair; a 1×1 strided projection on the
/// shortcut when the shape changes; a 3×3 stride-2 max-pool ending the downsampling blocks), then two
/// separable convolutions with BN and ReLU. Pooled features are the 2048 channels of "act4".
/// </summary>
public static class Xception
{
    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("xception", "Xception", "timm", "legacy_xception", ["Xception"], 299, Build);
    }

    /// <summary>Builds the Xception graph.</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("xception", o, 299);
        var x = b.ConvBnAct(b.Input, "conv1", "bn1", 32, 3, 2, PadSpec.None, actName: "act1");
        x = b.ConvBnAct(x, "conv2", "bn2", 64, 3, 1, PadSpec.None, actName: "act2");

        x = Block(b, x, "block1", 128, reps: 2, stride: 2, startWithRelu: false);
        x = Block(b, x, "block2", 256, reps: 2, stride: 2);
        x = Block(b, x, "block3", 728, reps: 2, stride: 2);
        for (int i = 4; i <= 11; i++) x = Block(b, x, $"block{i}", 728, reps: 3, stride: 1);
        x = Block(b, x, "block12", 1024, reps: 2, stride: 2, growFirst: false);

        x = b.Relu(b.BatchNorm(Separable(b, x, "conv3", 1536), "bn3"), "act3");
        x = b.Relu(b.BatchNorm(Separable(b, x, "conv4", 2048), "bn4"), "act4");
        var output = ModelZoo.PoolAndClassify(b, x, o, "fc");

        b.Group("stem", "conv1", "bn1", "act1", "conv2", "bn2", "act2");
        b.Group("entry_flow", "block1", "block2", "block3");
        b.Group("middle_flow", [.. Enumerable.Range(4, 8).Select(i => $"block{i}")]);
        b.Group("exit_flow", "block12", "conv3", "bn3", "act3", "conv4", "bn4", "act4");
        b.Group("head", "global_pool", "fc");
        return b.Build(output);
    }

    /// <summary>3×3 depthwise ("conv1") then 1×1 pointwise ("pointwise"), both without bias.</summary>
    private static Sym Separable(GraphBuilder b, Sym x, string name, int outChannels)
    {
        using var _ = b.Scope(name);
        x = b.Conv(x, "conv1", x.Channels, 3, 1, PadSpec.Symmetric(1), groups: x.Channels);
        return b.Conv(x, "pointwise", outChannels, 1, 1, PadSpec.None);
    }

    /// <summary>
    /// One residual block. Its main path is timm's "rep" sequence — [ReLU, separable, BN] × reps, the
    /// first ReLU dropped when the block does not start with one, a max-pool appended when strided —
    /// so the sequence index names each parametric node ("rep.1.conv1", "rep.2").
    /// </summary>
    private static Sym Block(GraphBuilder b, Sym input, string name, int outChannels, int reps, int stride,
        bool startWithRelu = true, bool growFirst = true)
    {
        int inChannels = input.Channels;
        Sym x = input, shortcut = input;
        using (b.Scope(name))
        {
            // The shortcut first: timm registers skip/skipbn before rep, and parameters follow node order.
            if (outChannels != inChannels || stride != 1)
                shortcut = b.ConvBnAct(input, "skip", "skipbn", outChannels, 1, stride, PadSpec.None, act: null);
            int index = startWithRelu ? 0 : -1;
            for (int i = 0; i < reps; i++)
            {
                int outc = growFirst || i == reps - 1 ? outChannels : inChannels;
                if (index >= 0) x = b.Relu(x, $"rep.{index}");
                x = Separable(b, x, $"rep.{index + 1}", outc);
                x = b.BatchNorm(x, $"rep.{index + 2}");
                index += 3;
            }
            if (stride != 1) x = b.MaxPool(x, 3, stride, PadSpec.Symmetric(1), name: $"rep.{index}");
        }
        return b.Sum(name, x, shortcut);
    }
}
