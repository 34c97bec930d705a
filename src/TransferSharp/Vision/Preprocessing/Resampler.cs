namespace TransferSharp.Vision.Preprocessing;

/// <summary>
/// Resizes 8-bit RGB images exactly as Pillow's <c>Image.resize</c> does (the resize torchvision
/// and timm apply to PIL images): separable convolution with the filter widened by the scale
/// factor when downscaling (antialiasing), fixed-point coefficients with 22 fractional bits, a
/// horizontal pass rounded to 8 bits, then a vertical pass. Bit-identical output means a checkpoint
/// sees the same pixels it was evaluated with in Python.
/// </summary>
public static class Resampler
{
    private const int PrecisionBits = 32 - 8 - 2;

    private static double Bilinear(double x)
    {
        if (x < 0) x = -x;
        return x < 1 ? 1 - x : 0;
    }

    private static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    /// <summary>Resizes to exactly width × height.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height, Interpolation interpolation)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}×{height} is empty");
        if (width == image.Width && height == image.Height) return image;
        if (interpolation == Interpolation.Nearest) return Nearest(image, width, height);
        Func<double, double> filter = interpolation == Interpolation.Bicubic ? Bicubic : Bilinear;
        double support = interpolation == Interpolation.Bicubic ? 2.0 : 1.0;

        var (kh, boundsH, ksizeH) = Coefficients(image.Width, width, filter, support);
        var (kv, boundsV, ksizeV) = Coefficients(image.Height, height, filter, support);
        bool needH = width != image.Width, needV = height != image.Height;

        var src = image;
        if (needH)
        {
            // Only the rows the vertical pass reads are resampled horizontally.
            int first = needV ? boundsV[0] : 0;
            int last = needV ? boundsV[(height - 1) * 2] + boundsV[(height - 1) * 2 + 1] : image.Height;
            if (needV) for (int i = 0; i < height; i++) boundsV[i * 2] -= first;
            src = Horizontal(image, width, first, last - first, kh, boundsH, ksizeH);
        }
        return needV ? Vertical(src, height, kv, boundsV, ksizeV) : src;
    }

    /// <summary>Resizes so the shorter side is <paramref name="size"/> (torchvision's Resize(int)).</summary>
    public static RgbImage ResizeShorterSide(RgbImage image, int size, Interpolation interpolation)
    {
        int w = image.Width, h = image.Height;
        if (w <= h)
        {
            if (w == size) return image;
            return Resize(image, size, (int)((long)size * h / w), interpolation);
        }
        if (h == size) return image;
        return Resize(image, (int)((long)size * w / h), size, interpolation);
    }

    private static (int[] K, int[] Bounds, int KSize) Coefficients(int inSize, int outSize, Func<double, double> filter, double filterSupport)
    {
        double scale = (double)(float)inSize / outSize; // Pillow passes the box as float
        double filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var kk = new double[(long)outSize * ksize];
        var bounds = new int[outSize * 2];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double ww = 0, ss = 1.0 / filterScale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            long k = (long)xx * ksize;
            for (int x = 0; x < xmax; x++)
            {
                double w = filter((x + xmin - center + 0.5) * ss);
                kk[k + x] = w;
                ww += w;
            }
            if (ww != 0) for (int x = 0; x < xmax; x++) kk[k + x] /= ww;
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        var fixedPoint = new int[kk.Length];
        for (long i = 0; i < kk.Length; i++)
            fixedPoint[i] = kk[i] < 0 ? (int)(-0.5 + kk[i] * (1 << PrecisionBits)) : (int)(0.5 + kk[i] * (1 << PrecisionBits));
        return (fixedPoint, bounds, ksize);
    }

    private static byte Clip8(int v)
    {
        if (v >= 1 << PrecisionBits << 8) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }

    private static RgbImage Horizontal(RgbImage image, int outWidth, int rowOffset, int rows, int[] k, int[] bounds, int ksize)
    {
        var src = image.Pixels;
        var dst = new byte[(long)outWidth * rows * 3];
        int inStride = image.Width * 3;
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = rows > 64 ? Environment.ProcessorCount : 1 }, y =>
        {
            long inRow = (long)(y + rowOffset) * inStride;
            long outRow = (long)y * outWidth * 3;
            for (int xx = 0; xx < outWidth; xx++)
            {
                int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
                int kOff = xx * ksize;
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                long p = inRow + (long)xmin * 3;
                for (int x = 0; x < xmax; x++, p += 3)
                {
                    int c = k[kOff + x];
                    s0 += src[p] * c;
                    s1 += src[p + 1] * c;
                    s2 += src[p + 2] * c;
                }
                long o = outRow + (long)xx * 3;
                dst[o] = Clip8(s0);
                dst[o + 1] = Clip8(s1);
                dst[o + 2] = Clip8(s2);
            }
        });
        return new RgbImage(outWidth, rows, dst);
    }

    private static RgbImage Vertical(RgbImage image, int outHeight, int[] k, int[] bounds, int ksize)
    {
        var src = image.Pixels;
        int w = image.Width;
        int stride = w * 3;
        var dst = new byte[(long)w * outHeight * 3];
        Parallel.For(0, outHeight, new ParallelOptions { MaxDegreeOfParallelism = outHeight > 64 ? Environment.ProcessorCount : 1 }, yy =>
        {
            int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
            int kOff = yy * ksize;
            long outRow = (long)yy * stride;
            for (int xx = 0; xx < w; xx++)
            {
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                long p = (long)ymin * stride + xx * 3;
                for (int y = 0; y < ymax; y++, p += stride)
                {
                    int c = k[kOff + y];
                    s0 += src[p] * c;
                    s1 += src[p + 1] * c;
                    s2 += src[p + 2] * c;
                }
                long o = outRow + xx * 3;
                dst[o] = Clip8(s0);
                dst[o + 1] = Clip8(s1);
                dst[o + 2] = Clip8(s2);
            }
        });
        return new RgbImage(w, outHeight, dst);
    }

    private static RgbImage Nearest(RgbImage image, int width, int height)
    {
        var src = image.Pixels;
        var dst = new byte[(long)width * height * 3];
        double sx = (double)image.Width / width, sy = (double)image.Height / height;
        for (int y = 0; y < height; y++)
        {
            int iy = Math.Min(image.Height - 1, (int)Math.Floor((y + 0.5) * sy));
            for (int x = 0; x < width; x++)
            {
                int ix = Math.Min(image.Width - 1, (int)Math.Floor((x + 0.5) * sx));
                long s = ((long)iy * image.Width + ix) * 3, d = ((long)y * width + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(width, height, dst);
    }
}
