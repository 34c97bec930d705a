using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>
/// NASNet-A Large (Zoph et al. 2017), as timm's <c>nasnetalarge</c> builds it (the TensorFlow weights,
/// ported): an unpadded 3×3 stride-2 stem convolution, two reduction stem cells, then three stacks of
/// six normal cells separated by reduction cells (4032 channels at the end, pooled after a ReLU).
/// Every cell combines two inputs through five "comb_iter" pairs of separable-convolution branches
/// (ReLU → depthwise → pointwise → BN, twice) and pools. Padding follows TensorFlow's "SAME": for
/// stride 2 it is asymmetric and depends on the input size; a stride-2 average pool counts the padded
/// zeros (timm pads explicitly), a stride-1 one does not. BN eps is 0.001 throughout.
/// </summary>
public static class NasNet
{
    private const double BnEps = 1e-3;
    private const int StemChannels = 96;
    private const int Channels = 4032 / 24; // timm: num_features // 24 = 168

    internal static IEnumerable<ZooEntry> Entries()
    {
        yield return new ZooEntry("nasnetalarge", "NASNet", "timm", "nasnetalarge", ["NASNetLarge"], 331, Build);
    }

    /// <summary>Builds the NASNet-A Large graph.</summary>
    public static ModelGraph Build(ModelOptions o)
    {
        var b = ModelZoo.Builder("nasnetalarge", o, 331);
        var conv0 = b.BatchNorm(b.Conv(b.Input, "conv0.conv", StemChannels, 3, 2, PadSpec.None), "conv0.bn", BnEps);

        var stem0 = CellStem0(b, conv0, Channels / 4);
        var stem1 = CellStem1(b, conv0, stem0, Channels / 2);

        // Each cell reads the two previous cells' outputs: (x, x_prev) in timm's forward.
        var cells = new List<Sym> { stem0, stem1 };
        Sym Last(int back) => cells[^back];
        cells.Add(FirstCell(b, "cell_0", Last(1), Last(2), Channels / 2, Channels));
        for (int i = 1; i <= 5; i++) cells.Add(NormalCell(b, $"cell_{i}", Last(1), Last(2), Channels, Channels));
        cells.Add(ReductionCell(b, "reduction_cell_0", Last(1), Last(2), 2 * Channels));
        cells.Add(FirstCell(b, "cell_6", Last(1), Last(3), Channels, 2 * Channels));
        cells.Add(NormalCell(b, "cell_7", Last(1), Last(2), 2 * Channels, 2 * Channels));
        for (int i = 8; i <= 11; i++) cells.Add(NormalCell(b, $"cell_{i}", Last(1), Last(2), 2 * Channels, 2 * Channels));
        cells.Add(ReductionCell(b, "reduction_cell_1", Last(1), Last(2), 4 * Channels));
        cells.Add(FirstCell(b, "cell_12", Last(1), Last(3), 2 * Channels, 4 * Channels));
        for (int i = 13; i <= 17; i++) cells.Add(NormalCell(b, $"cell_{i}", Last(1), Last(2), 4 * Channels, 4 * Channels));

        var x = b.Relu(Last(1), "act");
        var output = ModelZoo.PoolAndClassify(b, x, o, "last_linear", 0, o.DropRate is > 0 ? "head_drop" : null);

        b.Group("stem", "conv0", "cell_stem_0", "cell_stem_1");
        b.Group("stage1", [.. Enumerable.Range(0, 6).Select(i => $"cell_{i}")]);
        b.Group("stage2", ["reduction_cell_0", .. Enumerable.Range(6, 6).Select(i => $"cell_{i}")]);
        b.Group("stage3", ["reduction_cell_1", .. Enumerable.Range(12, 6).Select(i => $"cell_{i}"), "act"]);
        b.Group("head", "global_pool", "head_drop", "last_linear");
        return b.Build(output);
    }

    // ------------------------------------------------------------------ building blocks

    /// <summary>timm's ActConvBn: ReLU → 1×1 conv → BN.</summary>
    private static Sym ActConvBn(GraphBuilder b, Sym x, string name, int outChannels)
    {
        using var _ = b.Scope(name);
        x = b.Relu(x, "act");
        return b.BatchNorm(b.Conv(x, "conv", outChannels, 1, 1, PadSpec.None), "bn", BnEps);
    }

    /// <summary>Depthwise k×k ("depthwise_conv2d", TF-same padding) then 1×1 ("pointwise_conv2d").</summary>
    private static Sym Separable(GraphBuilder b, Sym x, string name, int outChannels, int kernel, int stride)
    {
        using var _ = b.Scope(name);
        x = b.Conv(x, "depthwise_conv2d", x.Channels, kernel, stride, PadSpec.Same, groups: x.Channels);
        return b.Conv(x, "pointwise_conv2d", outChannels, 1, 1, PadSpec.None);
    }

    /// <summary>timm's BranchSeparables: (ReLU → separable → BN) twice; only the first is strided. The
    /// middle width is the input's, except in stem cells, where it is already the output's.</summary>
    private static Sym Branch(GraphBuilder b, Sym x, string name, int outChannels, int kernel, int stride = 1, bool stemCell = false)
    {
        using var _ = b.Scope(name);
        int middle = stemCell ? outChannels : x.Channels;
        x = b.Relu(x, "act_1");
        x = b.BatchNorm(Separable(b, x, "separable_1", middle, kernel, stride), "bn_sep_1", BnEps);
        x = b.Relu(x, "act_2");
        return b.BatchNorm(Separable(b, x, "separable_2", outChannels, kernel, 1), "bn_sep_2", BnEps);
    }

    private static Sym MaxPool3(GraphBuilder b, Sym x, string name, int stride) =>
        b.MaxPool(x, 3, stride, PadSpec.Same, name: name);

    /// <summary>3×3 average pool with TF-same padding. Stride 1 resolves to a static symmetric pad that
    /// PyTorch excludes from the mean; stride 2 is timm's AvgPool2dSame, which pads with zeros first,
    /// so they count.</summary>
    private static Sym AvgPool3(GraphBuilder b, Sym x, string name, int stride) =>
        b.AvgPool(x, 3, stride, PadSpec.Same, countIncludePad: stride != 1, name: name);

    /// <summary>
    /// The factorised reduction of FirstCell and CellStem1: ReLU, then two 1×1 stride-2 subsamplings —
    /// one of the map as it is ("path_1"), one shifted by a pixel ("path_2": crop the first row and
    /// column, zero-pad the last) — each projected by a 1×1 conv, concatenated and normalised.
    /// </summary>
    private static Sym FactorizedReduction(GraphBuilder b, Sym relu, int outChannels)
    {
        var p1 = b.AvgPool(relu, 1, 2, countIncludePad: false, name: "path_1.avgpool");
        p1 = b.Conv(p1, "path_1.conv", outChannels / 2, 1, 1, PadSpec.None);
        var p2 = b.Pad(relu, -1, -1, 1, 1, "path_2.pad");
        p2 = b.AvgPool(p2, 1, 2, countIncludePad: false, name: "path_2.avgpool");
        p2 = b.Conv(p2, "path_2.conv", outChannels / 2, 1, 1, PadSpec.None);
        return b.BatchNorm(b.Concat("path_cat", p1, p2), "final_path_bn", BnEps);
    }

    /// <summary>
    /// The reduction pattern shared by both stem cells and both reduction cells. "Left" ops read
    /// <paramref name="left"/>, "right" ops <paramref name="right"/>; the output concatenates
    /// comb_iter_1..4 (4 × channels, half the resolution).
    /// </summary>
    private static Sym ReductionCombs(GraphBuilder b, string name, Sym left, Sym right, int channels, bool stemCell = false)
    {
        Sym c1, c2, c3, c4;
        using (b.Scope(name))
        {
            var c0 = b.Sum("comb_iter_0",
                Branch(b, left, "comb_iter_0_left", channels, 5, 2),
                Branch(b, right, "comb_iter_0_right", channels, 7, 2, stemCell));
            c1 = b.Sum("comb_iter_1",
                MaxPool3(b, left, "comb_iter_1_left", 2),
                Branch(b, right, "comb_iter_1_right", channels, 7, 2, stemCell));
            c2 = b.Sum("comb_iter_2",
                AvgPool3(b, left, "comb_iter_2_left", 2),
                Branch(b, right, "comb_iter_2_right", channels, 5, 2, stemCell));
            c3 = b.Sum("comb_iter_3", AvgPool3(b, c0, "comb_iter_3_right", 1), c1);
            c4 = b.Sum("comb_iter_4",
                Branch(b, c0, "comb_iter_4_left", channels, 3, 1),
                MaxPool3(b, left, "comb_iter_4_right", 2));
        }
        return b.Concat(name, c1, c2, c3, c4);
    }

    /// <summary>The pattern of normal and first cells: output = [left, comb_iter_0..4] (6 branches).</summary>
    private static Sym NormalCombs(GraphBuilder b, string name, Sym left, Sym right, int channels)
    {
        Sym c0, c1, c2, c3, c4;
        using (b.Scope(name))
        {
            c0 = b.Sum("comb_iter_0",
                Branch(b, right, "comb_iter_0_left", channels, 5),
                Branch(b, left, "comb_iter_0_right", left.Channels, 3));
            c1 = b.Sum("comb_iter_1",
                Branch(b, left, "comb_iter_1_left", left.Channels, 5),
                Branch(b, left, "comb_iter_1_right", left.Channels, 3));
            c2 = b.Sum("comb_iter_2", AvgPool3(b, right, "comb_iter_2_left", 1), left);
            c3 = b.Sum("comb_iter_3", AvgPool3(b, left, "comb_iter_3_left", 1), AvgPool3(b, left, "comb_iter_3_right", 1));
            c4 = b.Sum("comb_iter_4", Branch(b, right, "comb_iter_4_left", channels, 3), right);
        }
        return b.Concat(name, left, c0, c1, c2, c3, c4);
    }

    // ------------------------------------------------------------------ cells

    private static Sym CellStem0(GraphBuilder b, Sym conv0, int channels)
    {
        Sym x1;
        using (b.Scope("cell_stem_0")) x1 = ActConvBn(b, conv0, "conv_1x1", channels);
        return ReductionCombs(b, "cell_stem_0", x1, conv0, channels, stemCell: true);
    }

    private static Sym CellStem1(GraphBuilder b, Sym conv0, Sym stem0, int channels)
    {
        Sym left, right;
        using (b.Scope("cell_stem_1"))
        {
            left = ActConvBn(b, stem0, "conv_1x1", channels);
            right = FactorizedReduction(b, b.Relu(conv0, "act"), channels);
        }
        return ReductionCombs(b, "cell_stem_1", left, right, channels);
    }

    /// <summary>The first cell after a reduction: the previous-previous input is at twice the
    /// resolution, so it goes through the factorised reduction instead of a 1×1 unit.</summary>
    private static Sym FirstCell(GraphBuilder b, string name, Sym x, Sym xPrev, int outLeft, int outRight)
    {
        Sym left, right;
        using (b.Scope(name))
        {
            // conv_1x1 first: parameters follow node order, and timm registers it before the paths.
            right = ActConvBn(b, x, "conv_1x1", outRight);
            left = FactorizedReduction(b, b.Relu(xPrev, "act"), 2 * outLeft);
        }
        return NormalCombs(b, name, left, right, outRight);
    }

    private static Sym NormalCell(GraphBuilder b, string name, Sym x, Sym xPrev, int outLeft, int outRight)
    {
        Sym left, right;
        using (b.Scope(name))
        {
            left = ActConvBn(b, xPrev, "conv_prev_1x1", outLeft);
            right = ActConvBn(b, x, "conv_1x1", outRight);
        }
        return NormalCombs(b, name, left, right, outRight);
    }

    /// <summary>Reduction cells 0 and 1 (identical in structure): timm applies the cell's "left" ops
    /// to the 1×1 unit of x and the "right" ops to that of x_prev.</summary>
    private static Sym ReductionCell(GraphBuilder b, string name, Sym x, Sym xPrev, int channels)
    {
        Sym left, right;
        using (b.Scope(name))
        {
            left = ActConvBn(b, xPrev, "conv_prev_1x1", channels);
            right = ActConvBn(b, x, "conv_1x1", channels);
        }
        return ReductionCombs(b, name, right, left, channels);
    }
}
