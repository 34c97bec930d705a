using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Data;

/// <summary>How a sample becomes a model input: the checkpoint's eval transform, plus training augmentation or none.</summary>
/// <param name="Preprocessing">Crop size, scaling, normalisation (and, without augmentation, the resize and center crop).</param>
/// <param name="Augmentation">Random training transforms; null for evaluation.</param>
public sealed record SampleTransform(Preprocessing Preprocessing, Augmentation? Augmentation = null)
{
    /// <summary>Values per sample (channels × crop × crop).</summary>
    public int SampleSize => Preprocessing.Channels * Preprocessing.CropSize * Preprocessing.CropSize;

    /// <summary>Shape of one sample [C, H, W].</summary>
    public long[] SampleShape => [Preprocessing.Channels, Preprocessing.CropSize, Preprocessing.CropSize];
}

/// <summary>
/// Training augmentation as torchvision defines it: <c>RandomResizedCrop(crop, scale, ratio)</c> with its
/// 10-attempt fallback to a center crop, <c>RandomHorizontalFlip(0.5)</c>, then <c>ColorJitter</c>
/// (brightness, contrast, saturation, hue, applied in a random order, on 8-bit pixels as PIL's
/// ImageEnhance does). The random numbers come from a per-sample generator seeded from the run's seed,
/// the epoch and the sample, so a resumed run sees the same crops.
/// </summary>
public sealed record Augmentation
{
    /// <summary>Range of the crop's area as a fraction of the image (torchvision: 0.08–1).</summary>
    public (double Min, double Max) Scale { get; init; } = (0.08, 1.0);

    /// <summary>Range of the crop's aspect ratio w/h (torchvision: 3/4–4/3), sampled log-uniformly.</summary>
    public (double Min, double Max) Ratio { get; init; } = (3.0 / 4.0, 4.0 / 3.0);

    /// <summary>Flip left-right with probability 0.5.</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>ColorJitter brightness: factor drawn from [max(0, 1−b), 1+b]; 0 is off.</summary>
    public double Brightness { get; init; }

    /// <summary>ColorJitter contrast; 0 is off.</summary>
    public double Contrast { get; init; }

    /// <summary>ColorJitter saturation; 0 is off.</summary>
    public double Saturation { get; init; }

    /// <summary>ColorJitter hue shift, drawn from [−h, h] (at most 0.5); 0 is off.</summary>
    public double Hue { get; init; }

    /// <summary>torchvision's ImageNet training recipe: random resized crop and flip, no colour jitter.</summary>
    public static Augmentation Standard { get; } = new();

    /// <summary>The standard recipe plus ColorJitter(j, j, j) (and no hue shift).</summary>
    public static Augmentation WithJitter(double jitter) => new() { Brightness = jitter, Contrast = jitter, Saturation = jitter };

    /// <summary>Applies the augmentation to an image, giving a crop of the preprocessing's crop size.</summary>
    public RgbImage Apply(RgbImage image, Preprocessing preprocessing, Random random)
    {
        var (top, left, h, w) = CropParameters(image.Width, image.Height, random);
        var crop = ImageTransforms.Crop(image, top, left, h, w);
        var resized = Resampler.Resize(crop, preprocessing.CropSize, preprocessing.CropSize, preprocessing.Interpolation);
        if (HorizontalFlip && random.NextDouble() < 0.5) resized = FlipHorizontal(resized);
        if (Brightness > 0 || Contrast > 0 || Saturation > 0 || Hue > 0) resized = ColorJitter(resized, random);
        return resized;
    }

    /// <summary>torchvision's <c>RandomResizedCrop.get_params</c>: (top, left, height, width).</summary>
    internal (int Top, int Left, int Height, int Width) CropParameters(int width, int height, Random random)
    {
        double area = (double)width * height;
        double logMin = Math.Log(Ratio.Min), logMax = Math.Log(Ratio.Max);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * Uniform(random, Scale.Min, Scale.Max);
            double aspect = Math.Exp(Uniform(random, logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
                return (random.Next(0, height - h + 1), random.Next(0, width - w + 1), h, w);
        }
        // Fallback: the whole image, clamped to the ratio range, centred.
        double inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < Ratio.Min) { cw = width; ch = (int)Math.Round(cw / Ratio.Min, MidpointRounding.ToEven); }
        else if (inRatio > Ratio.Max) { ch = height; cw = (int)Math.Round(ch * Ratio.Max, MidpointRounding.ToEven); }
        else { cw = width; ch = height; }
        return ((height - ch) / 2, (width - cw) / 2, ch, cw);
    }

    private static double Uniform(Random random, double min, double max) => min + random.NextDouble() * (max - min);

    internal static RgbImage FlipHorizontal(RgbImage image)
    {
        var src = image.Pixels;
        var dst = new byte[src.Length];
        int w = image.Width;
        for (int y = 0; y < image.Height; y++)
        {
            long row = (long)y * w * 3;
            for (int x = 0; x < w; x++)
            {
                long s = row + (long)(w - 1 - x) * 3, d = row + (long)x * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(w, image.Height, dst);
    }

    private RgbImage ColorJitter(RgbImage image, Random random)
    {
        // torchvision draws the order first (randperm(4)), then the factors.
        int[] order = [0, 1, 2, 3];
        random.Shuffle(order);
        double b = Brightness > 0 ? Uniform(random, Math.Max(0, 1 - Brightness), 1 + Brightness) : 1;
        double c = Contrast > 0 ? Uniform(random, Math.Max(0, 1 - Contrast), 1 + Contrast) : 1;
        double s = Saturation > 0 ? Uniform(random, Math.Max(0, 1 - Saturation), 1 + Saturation) : 1;
        double hue = Hue > 0 ? Uniform(random, -Math.Min(Hue, 0.5), Math.Min(Hue, 0.5)) : 0;
        var px = (byte[])image.Pixels.Clone();
        foreach (var op in order)
        {
            switch (op)
            {
                case 0 when Brightness > 0: Blend(px, _ => 0, b); break;
                case 1 when Contrast > 0:
                    {
                        long sum = 0;
                        for (int i = 0; i < px.Length; i += 3) sum += Luma(px, i);
                        int mean = (int)(sum / (double)(px.Length / 3) + 0.5);
                        Blend(px, _ => mean, c);
                        break;
                    }
                case 2 when Saturation > 0:
                    {
                        var gray = new int[px.Length / 3];
                        for (int i = 0; i < gray.Length; i++) gray[i] = Luma(px, i * 3);
                        Blend(px, i => gray[i / 3], s);
                        break;
                    }
                case 3 when Hue != 0: ShiftHue(px, hue); break;
            }
        }
        return new RgbImage(image.Width, image.Height, px);
    }

    private static int Luma(byte[] px, int i) => (px[i] * 19595 + px[i + 1] * 38470 + px[i + 2] * 7471 + 0x8000) >> 16;

    /// <summary>PIL's Image.blend(degenerate, image, factor): degenerate + factor × (image − degenerate), truncated to 8 bits.</summary>
    private static void Blend(byte[] px, Func<int, int> degenerate, double factor)
    {
        for (int i = 0; i < px.Length; i++)
        {
            int d = degenerate(i);
            float v = (float)(d + factor * (px[i] - d));
            px[i] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
        }
    }

    /// <summary>torchvision's adjust_hue on PIL images: the 8-bit HSV hue channel shifted by hue × 255 (wrapping).</summary>
    private static void ShiftHue(byte[] px, double hue)
    {
        int shift = (int)(sbyte)(byte)(int)Math.Truncate(hue * 255);
        for (int i = 0; i < px.Length; i += 3)
        {
            double r = px[i] / 255.0, g = px[i + 1] / 255.0, bl = px[i + 2] / 255.0;
            double max = Math.Max(r, Math.Max(g, bl)), min = Math.Min(r, Math.Min(g, bl));
            double v = max, delta = max - min;
            if (delta <= 0) continue;
            double s = delta / max;
            double h = max == r ? (g - bl) / delta : max == g ? 2 + (bl - r) / delta : 4 + (r - g) / delta;
            h = (h / 6.0) % 1.0;
            if (h < 0) h += 1;
            int hq = ((int)(h * 255) + shift) & 0xff;
            h = hq / 255.0 * 6.0;
            int sector = (int)Math.Floor(h) % 6;
            double f = h - Math.Floor(h);
            double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
            var (nr, ng, nb) = sector switch
            {
                0 => (v, t, p),
                1 => (q, v, p),
                2 => (p, v, t),
                3 => (p, q, v),
                4 => (t, p, v),
                _ => (v, p, q),
            };
            px[i] = (byte)Math.Clamp((int)Math.Round(nr * 255), 0, 255);
            px[i + 1] = (byte)Math.Clamp((int)Math.Round(ng * 255), 0, 255);
            px[i + 2] = (byte)Math.Clamp((int)Math.Round(nb * 255), 0, 255);
        }
    }
}
