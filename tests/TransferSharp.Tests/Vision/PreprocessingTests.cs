using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Preprocessing;
using Xunit;

namespace TransferSharp.Tests.Vision;

/// <summary>Our decode + resize + crop against Pillow/torchvision's (tests/data/preprocessing/README.md).</summary>
[Trait("Category", "Preprocessing")]
public class PreprocessingTests
{
    private static string Dir => Path.Combine(Paths.TestData, "preprocessing");

    public static TheoryData<string, string, int, int, string> Cases()
    {
        var data = new TheoryData<string, string, int, int, string>();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "cases.json")));
        foreach (var c in doc.RootElement.EnumerateArray())
            data.Add(c.GetProperty("source").GetString()!, c.GetProperty("interpolation").GetString()!,
                c.GetProperty("resize").GetInt32(), c.GetProperty("crop").GetInt32(), c.GetProperty("expected").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Resize_and_crop_match_torchvision_bit_for_bit(string source, string interpolation, int resize, int crop, string expected)
    {
        var p = new Preprocessing { ResizeSize = resize, CropSize = crop, Interpolation = Preprocessing.ParseInterpolation(interpolation) };
        var ours = ImageTransforms.ResizeAndCrop(ImageDecoder.Decode(Path.Combine(Dir, source)), p);
        var theirs = ImageDecoder.Decode(Path.Combine(Dir, expected));
        Assert.Equal((theirs.Width, theirs.Height), (ours.Width, ours.Height));
        int differing = 0, maxDiff = 0;
        for (int i = 0; i < ours.Pixels.Length; i++)
        {
            int d = Math.Abs(ours.Pixels[i] - theirs.Pixels[i]);
            if (d != 0) differing++;
            maxDiff = Math.Max(maxDiff, d);
        }
        Assert.True(differing == 0, $"{source} {interpolation} {resize}/{crop}: {differing} of {ours.Pixels.Length} values differ (max {maxDiff})");
    }

    [Fact]
    public void Exif_orientation_is_applied()
    {
        var upright = ImageDecoder.Decode(Path.Combine(Dir, "cat.png"));
        var rotated = ImageDecoder.Decode(Path.Combine(Dir, "cat_exif6.jpg"));
        Assert.Equal((upright.Width, upright.Height), (rotated.Width, rotated.Height));
        double meanAbs = upright.Pixels.Zip(rotated.Pixels, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(meanAbs < 3, $"the EXIF-rotated JPEG differs from the upright PNG by {meanAbs:F2} on average");
    }

    [Fact]
    public void Grayscale_and_alpha_become_rgb()
    {
        var gray = ImageDecoder.Decode(Path.Combine(Dir, "camera_gray.png"));
        for (int i = 0; i < gray.Pixels.Length; i += 3)
            Assert.True(gray.Pixels[i] == gray.Pixels[i + 1] && gray.Pixels[i] == gray.Pixels[i + 2]);
        var rgba = ImageDecoder.Decode(Path.Combine(Dir, "logo_rgba.png"));
        Assert.Equal(120 * 120 * 3, rgba.Pixels.Length);
    }

    [Fact]
    public void Normalization_follows_the_checkpoint()
    {
        var img = new RgbImage(1, 1, [255, 0, 128]);
        var chw = new float[3];
        ImageTransforms.Normalize(img, new Preprocessing(), chw);
        Assert.Equal((1 - 0.485f) / 0.229f, chw[0], 5);
        Assert.Equal((0 - 0.456f) / 0.224f, chw[1], 5);
        var bgr = new Preprocessing { PixelScale = 255, Mean = [0, 0, 0], Std = [1, 1, 1], ChannelOrder = ChannelOrder.Bgr };
        ImageTransforms.Normalize(img, bgr, chw);
        Assert.Equal([128f, 0f, 255f], chw);
        var gray = new float[1];
        ImageTransforms.Normalize(img, new Preprocessing { Channels = 1, Mean = [0], Std = [1] }, gray);
        Assert.Equal((255 * 299 + 128 * 114 + 500) / 1000 / 255f, gray[0], 2);
    }

    [Fact]
    public void Bad_files_name_the_file_and_the_problem()
    {
        var dir = Paths.NewTempDir();
        try
        {
            var text = Path.Combine(dir, "notes.jpg");
            File.WriteAllText(text, "this is not an image\n");
            var e1 = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(text));
            Assert.Contains("notes.jpg", e1.Message);
            Assert.Contains("text file", e1.Message);

            var truncated = Path.Combine(dir, "cut.png");
            var png = File.ReadAllBytes(Path.Combine(Dir, "cat.png"));
            File.WriteAllBytes(truncated, png[..(png.Length / 2)]);
            var e2 = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(truncated));
            Assert.Contains("truncated", e2.Message);

            var empty = Path.Combine(dir, "empty.png");
            File.WriteAllBytes(empty, []);
            Assert.Contains("empty", Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(empty)).Message);

            Assert.Contains("not found", Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(Path.Combine(dir, "missing.jpg"))).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
