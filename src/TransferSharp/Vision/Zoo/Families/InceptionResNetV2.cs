using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// Inception-ResNet-v2 (Szegedy et al. 2016), as timm builds it (the TensorFlow weights, ported):
/// conv-BN(eps 0.001)-ReLU units named "X.conv"/"X.bn", an Inception-v3-like stem, 10 × Block35,
/// 20 × Block17 and 9 × Block8 residual blocks whose branches are concatenated, projected by a 1×1
/// convolution with bias, scaled (0.17, 0.10, 0.20) and added to the input, then a last Block8 without
/// scale or ReLU and a 1×1 unit to 1536 channels ("conv2d_7b", the pooled features).
/// </summary>
public static class InceptionResNetV2
{
    private const double BnEps = 1e-3;

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("inception_resnet_v2", "InceptionResNetV2", "timm", "inception_resnet_v2", ["InceptionResNetV2"], 299, Build);
    }

    /// <summary>Builds the Inception-ResNet-v2 graph.</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("inception_resnet_v2", o, 299);
        var x = Unit(b, b.Input, "conv2d_1a", 32, 3, 2);
        x = Unit(b, x, "conv2d_2a", 32, 3);
        x = Unit(b, x, "conv2d_2b", 64, 3, padding: P(1, 1));
        x = b.MaxPool(x, 3, 2, name: "maxpool_3a");
        x = Unit(b, x, "conv2d_3b", 80, 1);
        x = Unit(b, x, "conv2d_4a", 192, 3);
        x = b.MaxPool(x, 3, 2, name: "maxpool_5a");

        x = Mixed5b(b, x);
        for (int i = 0; i < 10; i++) x = Block35(b, x, $"repeat.{i}");
        x = Mixed6a(b, x);
        for (int i = 0; i < 20; i++) x = Block17(b, x, $"repeat_1.{i}");
        x = Mixed7a(b, x);
        for (int i = 0; i < 9; i++) x = Block8(b, x, $"repeat_2.{i}", 0.20, relu: true);
        x = Block8(b, x, "block8", 1.0, relu: false);
        x = Unit(b, x, "conv2d_7b", 1536, 1);
        var output = ModelZoo.PoolAndClassify(b, x, o, "classif", 0, o.DropRate is > 0 ? "head_drop" : null);

        b.Group("stem", "conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a");
        b.Group("block35", "mixed_5b", "repeat");
        b.Group("block17", "mixed_6a", "repeat_1");
        b.Group("block8", "mixed_7a", "repeat_2", "block8", "conv2d_7b");
        b.Group("head", "global_pool", "head_drop", "classif");
        return b.Build(output);
    }

    private static PadSpec P(int h, int w) => PadSpec.Symmetric(h, w);

    /// <summary>timm's ConvNormAct: convolution (no bias, unpadded unless told), BN, ReLU. The ReLU
    /// (timm's "X.bn.act") carries the unit's own name, so a tap on "X" is the unit's output.</summary>
    private static Sym Unit(GraphBuilder b, Sym x, string name, int outChannels, Size2 kernel, int stride = 1, PadSpec? padding = null) =>
        b.ConvBnAct(x, name + ".conv", name + ".bn", outChannels, kernel, stride, padding ?? PadSpec.None, eps: BnEps, actName: name);

    /// <summary>Residual tail of Block35/17/8: concatenated branches → 1×1 conv with bias → ×scale → + input
    /// (→ ReLU). The block's last node carries the block's name.</summary>
    private static Sym Residual(GraphBuilder b, Sym input, string name, double scale, bool relu, params Sym[] branches)
    {
        Sym up;
        using (b.Scope(name))
        {
            up = b.Conv(b.Concat("cat", branches), "conv2d", input.Channels, 1, 1, PadSpec.None, bias: true);
            // ×1.0 is exact, so the unscaled last Block8 needs no node for it.
            if (scale != 1.0) up = b.Scale(up, scale, "scale");
            if (relu) up = b.Sum("add", up, input);
        }
        return relu ? b.Relu(up, name) : b.Sum(name, up, input);
    }

    private static Sym Mixed5b(GraphBuilder b, Sym x)
    {
        Sym b0, b1, b2, b3;
        using (b.Scope("mixed_5b"))
        {
            b0 = Unit(b, x, "branch0", 96, 1);
            b1 = Unit(b, Unit(b, x, "branch1.0", 48, 1), "branch1.1", 64, 5, padding: P(2, 2));
            b2 = Unit(b, x, "branch2.0", 64, 1);
            b2 = Unit(b, b2, "branch2.1", 96, 3, padding: P(1, 1));
            b2 = Unit(b, b2, "branch2.2", 96, 3, padding: P(1, 1));
            b3 = b.AvgPool(x, 3, 1, P(1, 1), countIncludePad: false, name: "branch3.0");
            b3 = Unit(b, b3, "branch3.1", 64, 1);
        }
        return b.Concat("mixed_5b", b0, b1, b2, b3);
    }

    private static Sym Block35(GraphBuilder b, Sym x, string name)
    {
        Sym b0, b1, b2;
        using (b.Scope(name))
        {
            b0 = Unit(b, x, "branch0", 32, 1);
            b1 = Unit(b, Unit(b, x, "branch1.0", 32, 1), "branch1.1", 32, 3, padding: P(1, 1));
            b2 = Unit(b, x, "branch2.0", 32, 1);
            b2 = Unit(b, b2, "branch2.1", 48, 3, padding: P(1, 1));
            b2 = Unit(b, b2, "branch2.2", 64, 3, padding: P(1, 1));
        }
        return Residual(b, x, name, 0.17, true, b0, b1, b2);
    }

    private static Sym Mixed6a(GraphBuilder b, Sym x)
    {
        Sym b0, b1, b2;
        using (b.Scope("mixed_6a"))
        {
            b0 = Unit(b, x, "branch0", 384, 3, 2);
            b1 = Unit(b, x, "branch1.0", 256, 1);
            b1 = Unit(b, b1, "branch1.1", 256, 3, padding: P(1, 1));
            b1 = Unit(b, b1, "branch1.2", 384, 3, 2);
            b2 = b.MaxPool(x, 3, 2, name: "branch2");
        }
        return b.Concat("mixed_6a", b0, b1, b2);
    }

    private static Sym Mixed7a(GraphBuilder b, Sym x)
    {
        Sym b0, b1, b2, b3;
        using (b.Scope("mixed_7a"))
        {
            b0 = Unit(b, Unit(b, x, "branch0.0", 256, 1), "branch0.1", 384, 3, 2);
            b1 = Unit(b, Unit(b, x, "branch1.0", 256, 1), "branch1.1", 288, 3, 2);
            b2 = Unit(b, x, "branch2.0", 256, 1);
            b2 = Unit(b, b2, "branch2.1", 288, 3, padding: P(1, 1));
            b2 = Unit(b, b2, "branch2.2", 320, 3, 2);
            b3 = b.MaxPool(x, 3, 2, name: "branch3");
        }
        return b.Concat("mixed_7a", b0, b1, b2, b3);
    }

    /// <summary>Block17 and Block8: a 1×1 branch beside a 1×1 → 1×k → k×1 branch, then the residual tail.</summary>
    private static Sym FactorizedBlock(GraphBuilder b, Sym x, string name, int k, int[] widths, double scale, bool relu)
    {
        Sym b0, b1;
        using (b.Scope(name))
        {
            b0 = Unit(b, x, "branch0", widths[0], 1);
            b1 = Unit(b, x, "branch1.0", widths[1], 1);
            b1 = Unit(b, b1, "branch1.1", widths[2], new Size2(1, k), padding: P(0, k / 2));
            b1 = Unit(b, b1, "branch1.2", widths[3], new Size2(k, 1), padding: P(k / 2, 0));
        }
        return Residual(b, x, name, scale, relu, b0, b1);
    }

    private static Sym Block17(GraphBuilder b, Sym x, string name) => FactorizedBlock(b, x, name, 7, [192, 128, 160, 192], 0.10, relu: true);

    private static Sym Block8(GraphBuilder b, Sym x, string name, double scale, bool relu) =>
        FactorizedBlock(b, x, name, 3, [192, 192, 224, 256], scale, relu);
}
