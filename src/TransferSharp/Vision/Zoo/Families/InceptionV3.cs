using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// Inception v3 (Szegedy et al. 2015), as torchvision builds it: BasicConv2d units (conv, BN with
/// eps 0.001, ReLU), Mixed_5b … Mixed_7c, and the auxiliary classifier on Mixed_6e that runs in
/// training mode only. The pretrained checkpoints expect inputs normalised with mean = std = 0.5
/// (torchvision's transform_input does the same inside the model).
/// </summary>
public static class InceptionV3
{
    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("inception_v3", "InceptionV3", "torchvision", "inception_v3", ["InceptionV3"], 299, Build);
    }

    private static Sym Basic(GraphBuilder b, Sym x, string name, int outChannels, Size2 kernel, Size2? stride = null, PadSpec? padding = null) =>
        b.ConvBnAct(x, name + ".conv", name + ".bn", outChannels, kernel, stride ?? 1, padding ?? PadSpec.None, eps: 0.001);

    private static PadSpec P(int h, int w) => PadSpec.Symmetric(h, w);

    /// <summary>Builds the Inception v3 graph.</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("inception_v3", o, 299);
        var x = Basic(b, b.Input, "Conv2d_1a_3x3", 32, 3, 2);
        x = Basic(b, x, "Conv2d_2a_3x3", 32, 3);
        x = Basic(b, x, "Conv2d_2b_3x3", 64, 3, 1, P(1, 1));
        x = b.MaxPool(x, 3, 2, name: "maxpool1");
        x = Basic(b, x, "Conv2d_3b_1x1", 80, 1);
        x = Basic(b, x, "Conv2d_4a_3x3", 192, 3);
        x = b.MaxPool(x, 3, 2, name: "maxpool2");
        x = InceptionA(b, x, "Mixed_5b", 32);
        x = InceptionA(b, x, "Mixed_5c", 64);
        x = InceptionA(b, x, "Mixed_5d", 64);
        x = InceptionB(b, x, "Mixed_6a");
        x = InceptionC(b, x, "Mixed_6b", 128);
        x = InceptionC(b, x, "Mixed_6c", 160);
        x = InceptionC(b, x, "Mixed_6d", 160);
        x = InceptionC(b, x, "Mixed_6e", 192);
        if (o.AuxLogits && o.NumClasses > 0)
        {
            using var _ = b.Scope("AuxLogits");
            var a = b.AvgPool(x, 5, 3);
            a = Basic(b, a, "conv0", 128, 1);
            a = Basic(b, a, "conv1", 768, 5);
            a = b.GlobalPool(a);
            b.AuxOutput(b.Linear(a, "fc", o.NumClasses));
        }
        x = InceptionD(b, x, "Mixed_7a");
        x = InceptionE(b, x, "Mixed_7b");
        x = InceptionE(b, x, "Mixed_7c");
        var output = ModelZoo.PoolAndClassify(b, x, o, "fc", 0.5, "dropout");
        b.Group("stem", "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2");
        b.Group("mixed5", "Mixed_5b", "Mixed_5c", "Mixed_5d");
        b.Group("mixed6", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "AuxLogits");
        b.Group("mixed7", "Mixed_7a", "Mixed_7b", "Mixed_7c");
        b.Group("head", "global_pool", "dropout", "fc");
        return b.Build(output);
    }

    private static Sym InceptionA(GraphBuilder b, Sym x, string name, int poolFeatures)
    {
        Sym b1, b5, b3, bp;
        using (b.Scope(name))
        {
            b1 = Basic(b, x, "branch1x1", 64, 1);
            b5 = Basic(b, Basic(b, x, "branch5x5_1", 48, 1), "branch5x5_2", 64, 5, 1, P(2, 2));
            b3 = Basic(b, x, "branch3x3dbl_1", 64, 1);
            b3 = Basic(b, b3, "branch3x3dbl_2", 96, 3, 1, P(1, 1));
            b3 = Basic(b, b3, "branch3x3dbl_3", 96, 3, 1, P(1, 1));
            bp = Basic(b, b.AvgPool(x, 3, 1, P(1, 1)), "branch_pool", poolFeatures, 1);
        }
        return b.Concat(name, b1, b5, b3, bp);
    }

    private static Sym InceptionB(GraphBuilder b, Sym x, string name)
    {
        Sym b3, bd, bp;
        using (b.Scope(name))
        {
            b3 = Basic(b, x, "branch3x3", 384, 3, 2);
            bd = Basic(b, x, "branch3x3dbl_1", 64, 1);
            bd = Basic(b, bd, "branch3x3dbl_2", 96, 3, 1, P(1, 1));
            bd = Basic(b, bd, "branch3x3dbl_3", 96, 3, 2);
            bp = b.MaxPool(x, 3, 2);
        }
        return b.Concat(name, b3, bd, bp);
    }

    private static Sym InceptionC(GraphBuilder b, Sym x, string name, int c7)
    {
        Sym b1, b7, bd, bp;
        using (b.Scope(name))
        {
            b1 = Basic(b, x, "branch1x1", 192, 1);
            b7 = Basic(b, x, "branch7x7_1", c7, 1);
            b7 = Basic(b, b7, "branch7x7_2", c7, new Size2(1, 7), 1, P(0, 3));
            b7 = Basic(b, b7, "branch7x7_3", 192, new Size2(7, 1), 1, P(3, 0));
            bd = Basic(b, x, "branch7x7dbl_1", c7, 1);
            bd = Basic(b, bd, "branch7x7dbl_2", c7, new Size2(7, 1), 1, P(3, 0));
            bd = Basic(b, bd, "branch7x7dbl_3", c7, new Size2(1, 7), 1, P(0, 3));
            bd = Basic(b, bd, "branch7x7dbl_4", c7, new Size2(7, 1), 1, P(3, 0));
            bd = Basic(b, bd, "branch7x7dbl_5", 192, new Size2(1, 7), 1, P(0, 3));
            bp = Basic(b, b.AvgPool(x, 3, 1, P(1, 1)), "branch_pool", 192, 1);
        }
        return b.Concat(name, b1, b7, bd, bp);
    }

    private static Sym InceptionD(GraphBuilder b, Sym x, string name)
    {
        Sym b3, b7, bp;
        using (b.Scope(name))
        {
            b3 = Basic(b, Basic(b, x, "branch3x3_1", 192, 1), "branch3x3_2", 320, 3, 2);
            b7 = Basic(b, x, "branch7x7x3_1", 192, 1);
            b7 = Basic(b, b7, "branch7x7x3_2", 192, new Size2(1, 7), 1, P(0, 3));
            b7 = Basic(b, b7, "branch7x7x3_3", 192, new Size2(7, 1), 1, P(3, 0));
            b7 = Basic(b, b7, "branch7x7x3_4", 192, 3, 2);
            bp = b.MaxPool(x, 3, 2);
        }
        return b.Concat(name, b3, b7, bp);
    }

    private static Sym InceptionE(GraphBuilder b, Sym x, string name)
    {
        Sym b1, b3, bd, bp;
        using (b.Scope(name))
        {
            b1 = Basic(b, x, "branch1x1", 320, 1);
            var t = Basic(b, x, "branch3x3_1", 384, 1);
            b3 = b.Concat(Basic(b, t, "branch3x3_2a", 384, new Size2(1, 3), 1, P(0, 1)), Basic(b, t, "branch3x3_2b", 384, new Size2(3, 1), 1, P(1, 0)));
            var d = Basic(b, x, "branch3x3dbl_1", 448, 1);
            d = Basic(b, d, "branch3x3dbl_2", 384, 3, 1, P(1, 1));
            bd = b.Concat(Basic(b, d, "branch3x3dbl_3a", 384, new Size2(1, 3), 1, P(0, 1)), Basic(b, d, "branch3x3dbl_3b", 384, new Size2(3, 1), 1, P(1, 0)));
            bp = Basic(b, b.AvgPool(x, 3, 1, P(1, 1)), "branch_pool", 192, 1);
        }
        return b.Concat(name, b1, b3, bd, bp);
    }
}
