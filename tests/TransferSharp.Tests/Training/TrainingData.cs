using SkiaSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;

namespace TransferSharp.Tests.Training;

/// <summary>Small image folders for the training tests, copied from the bundled Fashion-MNIST subset
/// (data/fashion-mnist-subset, see its README) or drawn here with SkiaSharp.</summary>
internal static class TrainingData
{
    public static string Bundled => Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset");

    /// <summary>A folder with the first <paramref name="perClass"/> training images of the named classes.</summary>
    public static string Folder(string root, int perClass, params string[] classes)
    {
        foreach (var c in classes)
        {
            var dst = Path.Combine(root, c);
            Directory.CreateDirectory(dst);
            foreach (var f in Directory.GetFiles(Path.Combine(Bundled, "train", c)).Order(StringComparer.Ordinal).Take(perClass))
                File.Copy(f, Path.Combine(dst, Path.GetFileName(f)), overwrite: true);
        }
        return root;
    }

    /// <summary>Writes an image of the given size and colour type (gray, RGBA or RGB) as PNG or JPEG.</summary>
    public static void Draw(string path, int width, int height, SKColorType type, byte seed)
    {
        var info = new SKImageInfo(width, height, type, type == SKColorType.Gray8 ? SKAlphaType.Opaque : SKAlphaType.Premul);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(seed, (byte)(255 - seed), 128, 200));
            using var paint = new SKPaint { Color = new SKColor(20, seed, 220) };
            canvas.DrawCircle(width / 2f, height / 2f, Math.Min(width, height) / 3f, paint);
        }
        using var image = SKImage.FromBitmap(bitmap);
        var format = path.EndsWith(".jpg", StringComparison.Ordinal) ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png;
        using var data = image.Encode(format, 90);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, data.ToArray());
    }

    public static ImageDataset Open(string path) => ImageDataset.Open(path);

    /// <summary>Three classes ("x", "y", "z") of 512 features that differ in the mean of their first 10 dimensions.</summary>
    public static TransferSharp.Training.FeatureSet Features(int n, Random random)
    {
        var values = new float[n * 512];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = i % 3;
            for (int j = 0; j < 512; j++) values[i * 512 + j] = (float)(random.NextDouble() - 0.5) + (j < 10 && j % 3 == labels[i] ? 1f : 0f);
        }
        return new TransferSharp.Training.FeatureSet(values, 512, labels, labels.Select(l => $"#{l}").ToArray(), ["x", "y", "z"]);
    }
}
