using static TorchSharp.torch;

namespace TransferSharp.Data;

/// <summary>
/// Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a batch of images, as timm's <c>Mixup</c> does them with
/// <c>mode="batch"</c>: one λ ~ Beta(α, α) per batch; mixup blends each image with another of the batch,
/// <c>λ·x + (1 − λ)·x[perm]</c>; CutMix pastes a box of the other image covering a fraction 1 − λ of the area (clipped at
/// the border, λ corrected to the pasted area). The targets become the same blend of the two one-hot labels. With both
/// on, each batch uses one of them with equal probability. Every draw comes from the caller's <see cref="Random"/>, seeded
/// per epoch, so a resumed run mixes exactly as the uninterrupted one.
/// </summary>
internal static class BatchMixing
{
    /// <summary>Mixed images and soft targets [N, classes] for images [N, C, H, W] and class indices [N]; the caller owns both.
    /// Every other tensor made here (views, products) is disposed before returning: left to the finalizer thread, such
    /// temporaries crashed a CutMix run with SIGSEGV (../shared/notes/torchsharp-memory.md).</summary>
    public static (Tensor Images, Tensor Targets) Apply(Tensor images, Tensor labels, int classes, double mixupAlpha, double cutMixAlpha, Random random)
    {
        using var scope = NewDisposeScope();
        bool cut = cutMixAlpha > 0 && (mixupAlpha <= 0 || random.NextDouble() < 0.5);
        double lambda = Beta(cut ? cutMixAlpha : mixupAlpha, random);
        long n = images.shape[0];
        var perm = new long[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        random.Shuffle(perm);
        var index = tensor(perm, device: images.device);
        var partner = images.index_select(0, index);
        Tensor mixed;
        if (cut)
        {
            long h = images.shape[2], w = images.shape[3];
            double ratio = Math.Sqrt(1 - lambda);
            long ch = (long)(h * ratio), cw = (long)(w * ratio);
            long cy = random.NextInt64(h), cx = random.NextInt64(w);
            long y0 = Math.Clamp(cy - ch / 2, 0, h), y1 = Math.Clamp(cy + ch / 2, 0, h);
            long x0 = Math.Clamp(cx - cw / 2, 0, w), x1 = Math.Clamp(cx + cw / 2, 0, w);
            mixed = images.clone();
            if (y1 > y0 && x1 > x0)
                mixed.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).copy_(partner.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
            lambda = 1 - (double)((y1 - y0) * (x1 - x0)) / (h * w);
        }
        else mixed = images * lambda + partner * (1 - lambda);
        var onehot = nn.functional.one_hot(labels, classes).to(ScalarType.Float32);
        var partnerHot = onehot.index_select(0, index.to(onehot.device));
        var targets = onehot * lambda + partnerHot * (1 - lambda);
        return (mixed.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    /// <summary>A draw of Beta(α, α), from two Gamma(α) draws.</summary>
    internal static double Beta(double alpha, Random random)
    {
        double a = Gamma(alpha, random), b = Gamma(alpha, random);
        return a + b > 0 ? a / (a + b) : 0.5;
    }

    // Marsaglia and Tsang (2000); for α < 1, Gamma(α + 1)·U^(1/α).
    private static double Gamma(double alpha, Random random)
    {
        if (alpha < 1) return Gamma(alpha + 1, random) * Math.Pow(1 - random.NextDouble(), 1 / alpha);
        double d = alpha - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = Normal(random);
                v = 1 + c * x;
            }
            while (v <= 0);
            v = v * v * v;
            double u = 1 - random.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
