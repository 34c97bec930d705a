using SkiaSharp;
using TransferSharp.Tests.Support;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>Decodes the photos of tests/data/photos into RGB tensors of 0–255 pixels: shorter side
/// resized to the crop size (bilinear), then a center crop. Simple on purpose: both sides of every
/// comparison get the same tensors.</summary>
internal static class TestImages
{
    public static string PhotoDir => Path.Combine(Paths.TestData, "photos");

    public static string[] PhotoNames => Directory.GetFiles(PhotoDir, "*.jpg").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray()!;

    public static Tensor Load(string path, int size = 224)
    {
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidDataException($"cannot decode {path}");
        double scale = (double)size / Math.Min(bitmap.Width, bitmap.Height);
        int w = Math.Max(size, (int)Math.Round(bitmap.Width * scale)), h = Math.Max(size, (int)Math.Round(bitmap.Height * scale));
        using var resized = bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None))
            ?? throw new InvalidDataException($"cannot resize {path}");
        int x0 = (w - size) / 2, y0 = (h - size) / 2;
        var data = new float[3 * size * size];
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                var c = resized.GetPixel(x0 + x, y0 + y);
                data[0 * size * size + y * size + x] = c.Red;
                data[1 * size * size + y * size + x] = c.Green;
                data[2 * size * size + y * size + x] = c.Blue;
            }
        }
        using var t = tensor(data);
        return t.reshape(1, 3, size, size);
    }

    public static Tensor Batch(IEnumerable<string> names, int size = 224)
    {
        var parts = names.Select(n => Load(Path.Combine(PhotoDir, n + ".jpg"), size)).ToArray();
        try
        {
            return cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }
}
