using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Preprocessing;

/// <summary>The eval transform of a checkpoint: resize the shorter side, center-crop, scale, normalise.</summary>
public static class ImageTransforms
{
    /// <summary>Crops the center region (torchvision's CenterCrop: offsets rounded half-to-even,
    /// zero padding when the image is smaller than the crop).</summary>
    public static RgbImage CenterCrop(RgbImage image, int cropHeight, int cropWidth)
    {
        if (image.Width == cropWidth && image.Height == cropHeight) return image;
        int top = (int)Math.Round((image.Height - cropHeight) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((image.Width - cropWidth) / 2.0, MidpointRounding.ToEven);
        return Crop(image, top, left, cropHeight, cropWidth);
    }

    /// <summary>Crops a region; parts outside the image are black (torchvision pads with zeros).</summary>
    public static RgbImage Crop(RgbImage image, int top, int left, int height, int width)
    {
        var dst = new byte[(long)width * height * 3];
        var src = image.Pixels;
        for (int y = 0; y < height; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= image.Height) continue;
            int x0 = Math.Max(0, -left), x1 = Math.Min(width, image.Width - left);
            if (x1 <= x0) continue;
            Array.Copy(src, ((long)sy * image.Width + left + x0) * 3, dst, ((long)y * width + x0) * 3, (long)(x1 - x0) * 3);
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>Resize + center crop as the preprocessing says (8-bit result, before normalisation).</summary>
    public static RgbImage ResizeAndCrop(RgbImage image, Preprocessing p)
    {
        var resized = Resampler.ResizeShorterSide(image, p.ResizeSize, p.Interpolation);
        return CenterCrop(resized, p.CropSize, p.CropSize);
    }

    /// <summary>Writes the normalised CHW float values of an 8-bit image into <paramref name="dst"/>
    /// (length channels × height × width), in the model's channel order.</summary>
    public static void Normalize(RgbImage image, Preprocessing p, Span<float> dst)
    {
        int plane = image.Width * image.Height;
        int channels = p.Channels;
        if (dst.Length != channels * plane) throw new ArgumentException($"destination holds {dst.Length} values, need {channels * plane}");
        var src = image.Pixels;
        double scale = p.PixelScale / 255.0;
        if (channels == 1)
        {
            // PIL's convert("L"): ITU-R 601-2 luma, integer arithmetic.
            float m = (float)p.Mean[0], s = (float)p.Std[0];
            for (int i = 0; i < plane; i++)
            {
                int l = (src[i * 3] * 19595 + src[i * 3 + 1] * 38470 + src[i * 3 + 2] * 7471 + 0x8000) >> 16;
                dst[i] = (float)((l * scale - m) / s);
            }
            return;
        }
        if (channels != 3) throw new NotSupportedException($"{channels}-channel preprocessing is not supported (1 or 3)");
        for (int c = 0; c < 3; c++)
        {
            int srcChannel = p.ChannelOrder == ChannelOrder.Bgr ? 2 - c : c;
            // ToTensor divides by 255 in float32, Normalize subtracts and divides in float32: same here.
            float mean = (float)p.Mean[c], std = (float)p.Std[c];
            float fscale = (float)scale;
            var outPlane = dst.Slice(c * plane, plane);
            for (int i = 0; i < plane; i++) outPlane[i] = (src[i * 3 + srcChannel] * fscale - mean) / std;
        }
    }

    /// <summary>Decodes, resizes, crops and normalises one file into CHW floats.</summary>
    public static float[] Load(string path, Preprocessing p)
    {
        var img = ResizeAndCrop(ImageDecoder.Decode(path), p);
        var values = new float[p.Channels * img.Width * img.Height];
        Normalize(img, p, values);
        return values;
    }

    /// <summary>
    /// The one way images are decoded in parallel (prediction batches, training and evaluation loaders, extraction):
    /// a failing image surfaces as its own typed exception (an <see cref="ImageDecodeException"/> naming the file),
    /// never as the <see cref="AggregateException"/> <see cref="Parallel"/> wraps it in.
    /// </summary>
    internal static void ForEachImage(int count, ParallelOptions options, Action<int> body)
    {
        try
        {
            Parallel.For(0, count, options, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            var first = e.InnerExceptions.FirstOrDefault(x => x is InvalidFileException) ?? e.InnerExceptions[0];
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
    }

    /// <summary>Decodes and preprocesses files in parallel into one batch tensor [N, C, crop, crop].</summary>
    public static Tensor LoadBatch(IReadOnlyList<string> paths, Preprocessing p)
    {
        if (paths.Count == 0) throw new ArgumentException("no images given");
        int per = p.Channels * p.CropSize * p.CropSize;
        var all = new float[(long)per * paths.Count];
        ForEachImage(paths.Count, new ParallelOptions(), i =>
        {
            var img = ResizeAndCrop(ImageDecoder.Decode(paths[i]), p);
            Normalize(img, p, all.AsSpan(i * per, per));
        });
        using var flat = tensor(all);
        return flat.reshape(paths.Count, p.Channels, p.CropSize, p.CropSize);
    }
}
