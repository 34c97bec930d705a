using System.Text.RegularExpressions;
using SkiaSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Vision;
using TransferSharp.Vision.Preprocessing;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>The fine-tuning augmentation's crop scale and mirror images: `transfer train --crop-scale / --no-flip`, what
/// the loader does with them, and `transfer evaluate --tta` on a model trained without mirror images.</summary>
[Collection("Console")]
[Trait("Category", "Training")]
public sealed class AugmentationOptionsTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Crop_scale_and_no_flip_reach_the_model_file_and_tta_is_refused_for_it()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 3, "bag", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        CliRunner.RunJson("train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data,
            "--mode", "finetune", "--epochs", "1", "--crop-scale", "0.35", "--no-flip", "--out", model);
        using (var trained = VisionModel.Load(model))
        {
            var augmentation = trained.Training!.Options.Augmentation!;
            Assert.Equal((0.35, 1.0), augmentation.Scale);
            Assert.False(augmentation.HorizontalFlip);
        }

        var (code, _, err) = CliRunner.Run("evaluate", "--model", model, "--data", data, "--tta");
        Assert.Equal(2, code);
        var message = Regex.Replace(err, @"\s+", " ");
        Assert.Contains("--tta", message);
        Assert.Contains("without mirror images", message);
        // Without --tta the same model evaluates.
        Assert.InRange(CliRunner.RunJson("evaluate", "--model", model, "--data", data).GetProperty("accuracy").GetDouble(), 0, 1);
    }

    [Theory]
    [InlineData("--crop-scale 0", "--crop-scale 0")]
    [InlineData("--crop-scale 1.5", "in (0, 1]")]
    [InlineData("--crop-scale -0.2", "in (0, 1]")]
    [InlineData("--crop-scale 0.5 --augment none", "--augment none")]
    [InlineData("--no-flip --augment none", "--augment none")]
    public void Bad_augmentation_options_are_refused_before_training(string options, string expected)
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "sandal");
        var model = Path.Combine(_dir, "x.safetensors");
        var (code, _, err) = CliRunner.Run(["train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data,
            "--mode", "finetune", "--epochs", "1", .. options.Split(' '), "--out", model]);
        Assert.Equal(2, code);
        Assert.Contains(expected, Regex.Replace(err, @"\s+", " "));
        Assert.False(File.Exists(model));
    }

    [Fact]
    public void The_loader_mirrors_only_when_the_augmentation_flips()
    {
        // Left half dark, right half bright: a mirrored sample has its bright half on the left.
        var root = Path.Combine(_dir, "halves");
        foreach (var c in new[] { "a", "b" })
        {
            var info = new SKImageInfo(40, 40, SKColorType.Rgba8888, SKAlphaType.Premul);
            using var bitmap = new SKBitmap(info);
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.Black);
                using var paint = new SKPaint { Color = SKColors.White };
                canvas.DrawRect(20, 0, 20, 40, paint);
            }
            Directory.CreateDirectory(Path.Combine(root, c));
            using var image = SKImage.FromBitmap(bitmap);
            using var png = image.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(root, c, "halves.png"), png.ToArray());
        }
        var ds = ImageDataset.FromFolder(root);
        var preprocessing = Preprocessing.ImageNet with { ResizeSize = 32, CropSize = 32 };
        // The whole image every time (area 1, ratio 1), so only the mirror can move the bright half.
        var whole = new Augmentation { Scale = (1.0, 1.0), Ratio = (1.0, 1.0) };

        int Mirrored(Augmentation augmentation)
        {
            int mirrored = 0;
            for (int epoch = 0; epoch < 8; epoch++)
                foreach (var batch in DataLoader.Batches(ds, [0, 1], new SampleTransform(preprocessing, augmentation), new LoaderOptions { BatchSize = 2 }, seed: 3, epoch: epoch))
                    using (batch)
                    {
                        var images = batch.Images; // [2, 3, 32, 32]
                        for (int i = 0; i < 2; i++)
                        {
                            float left = images[i, 0, 16, 2].item<float>(), right = images[i, 0, 16, 29].item<float>();
                            Assert.NotEqual(left > right, left < right); // one half is bright, the other dark
                            if (left > right) mirrored++;
                        }
                    }
            return mirrored;
        }

        Assert.Equal(0, Mirrored(whole with { HorizontalFlip = false }));
        Assert.InRange(Mirrored(whole), 3, 13); // of 16 samples, each mirrored with probability ½
    }

    [Fact]
    public void Crops_cover_at_least_the_crop_scale()
    {
        var augmentation = new Augmentation { Scale = (0.35, 1.0) };
        var random = new Random(0);
        double smallest = 1;
        for (int i = 0; i < 2000; i++)
        {
            var (_, _, h, w) = augmentation.CropParameters(28, 28, random);
            smallest = Math.Min(smallest, h * w / (28.0 * 28.0));
        }
        Assert.InRange(smallest, 0.33, 0.40); // the area drawn from 0.35–1, its sides rounded to whole pixels
    }
}
