using SkiaSharp;

namespace TransferSharp.Vision.Preprocessing;

/// <summary>An image file could not be decoded: not an image, corrupt, truncated, or too large.</summary>
public sealed class ImageDecodeException(string path, string reason, Exception? inner = null)
    : InvalidFileException(path, reason, inner);

/// <summary>An 8-bit RGB image, pixels interleaved row by row (R, G, B, R, G, B, …).</summary>
public sealed class RgbImage
{
    /// <summary>Wraps pixel data (length must be width × height × 3).</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}×{height} is empty");
        if (pixels.LongLength != (long)width * height * 3) throw new ArgumentException($"expected {(long)width * height * 3} bytes for {width}×{height} RGB, got {pixels.LongLength}");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Interleaved RGB bytes.</summary>
    public byte[] Pixels { get; }
}

/// <summary>
/// Decodes JPEG, PNG, BMP, GIF (first frame) and WebP with SkiaSharp into RGB, the way PIL's
/// <c>convert("RGB")</c> does (grayscale replicated, alpha dropped), and applies the EXIF orientation.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Images with more pixels than this are refused (a decompression bomb guard): 200 megapixels.</summary>
    public const long MaxPixels = 200_000_000;

    /// <summary>Decodes a file.</summary>
    public static RgbImage Decode(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            throw new ImageDecodeException(path, "file not found");
        }
        catch (DirectoryNotFoundException)
        {
            throw new ImageDecodeException(path, "file not found");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ImageDecodeException(path, "cannot read the file: " + e.Message, e);
        }
        return Decode(data, path);
    }

    /// <summary>Decodes encoded bytes; <paramref name="name"/> names the source in errors; images with more than
    /// <paramref name="maxPixels"/> pixels (default <see cref="MaxPixels"/>) are refused before any pixel is decoded.</summary>
    public static RgbImage Decode(byte[] data, string name = "<memory>", long maxPixels = MaxPixels)
    {
        try
        {
            return DecodeChecked(data, name, maxPixels);
        }
        catch (Exception e) when (e is not (ImageDecodeException or OutOfMemoryException or OperationCanceledException))
        {
            // Whatever the codec library throws for a hostile file is still a bad file, named.
            throw new ImageDecodeException(name, $"cannot decode the image ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>The width and height an image file declares (after its EXIF orientation), read from its header without
    /// decoding the pixels; null when it is not an image the decoder knows.</summary>
    internal static (int Width, int Height)? ReadSize(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var codec = SKCodec.Create(stream);
            if (codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0) return null;
            bool swapped = codec.EncodedOrigin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
            return swapped ? (codec.Info.Height, codec.Info.Width) : (codec.Info.Width, codec.Info.Height);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static RgbImage DecodeChecked(byte[] data, string name, long maxPixels)
    {
        if (data.Length == 0) throw new ImageDecodeException(name, "the file is empty");
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData)
            ?? throw new ImageDecodeException(name, "not a recognised image (JPEG, PNG, BMP, GIF or WebP expected)" + Sniff(data));
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0) throw new ImageDecodeException(name, $"invalid image size {info.Width}×{info.Height}");
        if ((long)info.Width * info.Height > maxPixels)
            throw new ImageDecodeException(name, $"image is {info.Width}×{info.Height}, more than {maxPixels / 1e6:0.##} megapixels");
        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(target);
        var result = codec.GetPixels(target, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new ImageDecodeException(name, $"cannot decode the image ({result})");
        if (result == SKCodecResult.IncompleteInput)
            throw new ImageDecodeException(name, "the image data is truncated (the decoder stopped before the last row)");
        var rgba = bitmap.GetPixelSpan();
        var rgb = new byte[(long)info.Width * info.Height * 3];
        for (long i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[(int)i];
            rgb[j + 1] = rgba[(int)i + 1];
            rgb[j + 2] = rgba[(int)i + 2];
        }
        return Orient(new RgbImage(info.Width, info.Height, rgb), codec.EncodedOrigin);
    }

    private static string Sniff(byte[] data)
    {
        if (data.Length >= 4 && data[0] == 0x7f && data[1] == (byte)'E') return "; it looks like an executable";
        if (data.Length >= 2 && data[0] == (byte)'P' && data[1] == (byte)'K') return "; it looks like a zip archive";
        int printable = data.Take(512).Count(b => b is >= 0x20 and < 0x7f or (byte)'\n' or (byte)'\r' or (byte)'\t');
        return printable == Math.Min(512, data.Length) ? "; it looks like a text file" : "";
    }

    /// <summary>Applies an EXIF orientation so the image is upright.</summary>
    public static RgbImage Orient(RgbImage image, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or SKEncodedOrigin.Default) return image;
        int w = image.Width, h = image.Height;
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < oh; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                // (sx, sy): the source pixel shown at output (x, y), per the EXIF orientation tag.
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, h - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, h - 1 - x),
                    SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),
                    SKEncodedOrigin.LeftBottom => (w - 1 - y, x),
                    _ => (x, y),
                };
                long s = ((long)sy * w + sx) * 3, d = ((long)y * ow + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(ow, oh, dst);
    }
}
