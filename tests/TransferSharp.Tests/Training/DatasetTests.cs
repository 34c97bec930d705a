using SkiaSharp;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using TransferSharp.Vision.Preprocessing;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class DatasetTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void FolderClassesAreSortedSubfoldersAndEmptyOnesAreNamed()
    {
        var root = TrainingData.Folder(Path.Combine(_dir, "d"), 2, "trouser", "bag");
        File.WriteAllText(Path.Combine(root, "bag", "notes.txt"), "not an image");
        var ds = ImageDataset.FromFolder(root);
        Assert.Equal(["bag", "trouser"], ds.ClassNames);
        Assert.Equal(4, ds.Count);
        Assert.Equal([2, 2], ds.ClassCounts());

        Directory.CreateDirectory(Path.Combine(root, "empty_class"));
        var e = Assert.Throws<DatasetException>(() => ImageDataset.FromFolder(root));
        Assert.Contains("'empty_class'", e.Message);
        Assert.Throws<DatasetException>(() => ImageDataset.FromFolder(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void ManifestPathsAreRelativeAndMissingFilesAreListedWithLineNumbers()
    {
        TrainingData.Folder(Path.Combine(_dir, "img"), 2, "bag", "coat");
        var files = Directory.GetFiles(Path.Combine(_dir, "img"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var lines = new List<string> { "path,label" };
        lines.AddRange(files.Select(f => $"{Path.GetRelativePath(_dir, f)},{(f.Contains("bag") ? "a bag" : "coat")}"));
        File.WriteAllLines(Path.Combine(_dir, "ok.csv"), lines);
        var ds = ImageDataset.FromManifest(Path.Combine(_dir, "ok.csv"));
        Assert.Equal(["a bag", "coat"], ds.ClassNames);
        Assert.Equal(4, ds.Count);
        Assert.True(File.Exists(ds.SourceOf(0)));

        File.WriteAllLines(Path.Combine(_dir, "tabs.tsv"), files.Select(f => $"{f}\tcoat"));
        Assert.Equal(4, ImageDataset.Open(Path.Combine(_dir, "tabs.tsv")).Count);

        lines.Add("img/nowhere.png,coat");
        File.WriteAllLines(Path.Combine(_dir, "bad.csv"), lines);
        var e = Assert.Throws<DatasetException>(() => ImageDataset.FromManifest(Path.Combine(_dir, "bad.csv")));
        Assert.Contains("line 6: img/nowhere.png", e.Message);
        File.WriteAllLines(Path.Combine(_dir, "short.csv"), ["just-a-path.png"]);
        Assert.Contains("line 1", Assert.Throws<DatasetException>(() => ImageDataset.FromManifest(Path.Combine(_dir, "short.csv"))).Message);
    }

    [Fact]
    public void StratifiedSplitIsSeededAndKeepsEveryClassOnBothSides()
    {
        var ds = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "d"), 10, "bag", "coat", "dress"));
        var (train, val) = ds.StratifiedSplit(0.2, seed: 5);
        Assert.Equal([8, 8, 8], train.ClassCounts());
        Assert.Equal([2, 2, 2], val.ClassCounts());
        var (train2, val2) = ds.StratifiedSplit(0.2, seed: 5);
        Assert.Equal(Enumerable.Range(0, val.Count).Select(val.SourceOf), Enumerable.Range(0, val2.Count).Select(val2.SourceOf));
        var (_, val3) = ds.StratifiedSplit(0.2, seed: 6);
        Assert.NotEqual(Enumerable.Range(0, val.Count).Select(val.SourceOf), Enumerable.Range(0, val3.Count).Select(val3.SourceOf));
        Assert.Empty(Enumerable.Range(0, val.Count).Select(val.SourceOf).Intersect(Enumerable.Range(0, train.Count).Select(train.SourceOf)));
    }

    [Fact]
    public void MixedSizesAndModesLoadAndBadImagesAreSkippedOrFail()
    {
        var root = Path.Combine(_dir, "mixed");
        TrainingData.Draw(Path.Combine(root, "a", "gray.png"), 40, 30, SKColorType.Gray8, 10);
        TrainingData.Draw(Path.Combine(root, "a", "rgba.png"), 17, 50, SKColorType.Rgba8888, 90);
        TrainingData.Draw(Path.Combine(root, "b", "photo.jpg"), 64, 48, SKColorType.Rgba8888, 200);
        TrainingData.Draw(Path.Combine(root, "b", "tiny.png"), 3, 5, SKColorType.Rgba8888, 250);
        File.WriteAllText(Path.Combine(root, "b", "broken.jpg"), "this is not a JPEG");
        var ds = ImageDataset.FromFolder(root);
        var transform = new SampleTransform(Preprocessing.ImageNet with { ResizeSize = 24, CropSize = 20 });
        var log = new BadImageLog();
        var batches = DataLoader.Batches(ds, Enumerable.Range(0, ds.Count).ToArray(), transform, new LoaderOptions { BatchSize = 2 }, badImages: log).ToList();
        Assert.Equal(4, batches.Sum(b => b.Indices.Length));
        Assert.All(batches, b => Assert.Equal([b.Indices.Length, 3, 20, 20], b.Images.shape));
        Assert.Equal(1, log.Count);
        Assert.EndsWith("broken.jpg", log.Entries[0].Path);
        foreach (var b in batches) b.Dispose();

        var e = Assert.Throws<ImageDecodeException>(() =>
        {
            foreach (var b in DataLoader.Batches(ds, Enumerable.Range(0, ds.Count).ToArray(), transform, new LoaderOptions { BatchSize = 2, OnBadImage = BadImagePolicy.Fail })) b.Dispose();
        });
        Assert.EndsWith("broken.jpg", e.FilePath);

        // Augmented crops are always the model's size, whatever the source size.
        var aug = new SampleTransform(transform.Preprocessing, Augmentation.WithJitter(0.4) with { Hue = 0.1 });
        foreach (var b in DataLoader.Batches(ds, Enumerable.Range(0, ds.Count).ToArray(), aug, new LoaderOptions { BatchSize = 8 }, seed: 1, epoch: 2))
        {
            Assert.Equal([4, 3, 20, 20], b.Images.shape);
            b.Dispose();
        }
    }

    [Fact]
    public void RandomResizedCropFollowsTorchvisionsRules()
    {
        var aug = Augmentation.Standard;
        var random = new Random(0);
        double minArea = 1, maxArea = 0;
        for (int i = 0; i < 2000; i++)
        {
            var (top, left, h, w) = aug.CropParameters(200, 100, random);
            Assert.InRange(top, 0, 100 - h);
            Assert.InRange(left, 0, 200 - w);
            double area = h * w / 20000.0;
            minArea = Math.Min(minArea, area);
            maxArea = Math.Max(maxArea, area);
            Assert.InRange(w / (double)h, 0.74, 1.35);
        }
        Assert.InRange(minArea, 0.079, 0.1);
        Assert.InRange(maxArea, 0.6, 0.666); // the crop must fit: at most 133×100 of 200×100 (ratio ≤ 4/3)

        // The fallback: a ratio range the image cannot meet within 10 attempts → center crop clamped to the range.
        var strict = aug with { Scale = (1.0, 1.0), Ratio = (1.0, 1.0) };
        Assert.Equal((0, 50, 100, 100), strict.CropParameters(200, 100, new Random(1)));
        var wide = aug with { Scale = (1.0, 1.0), Ratio = (3.0, 4.0) };
        Assert.Equal((33, 0, 33, 100), wide.CropParameters(100, 100, new Random(1)));
    }

    [Fact]
    public void TensorDatasetServesRowsAndFlips()
    {
        using var images = TorchSharp.torch.arange(2 * 1 * 2 * 3, TorchSharp.torch.ScalarType.Float32).reshape(2, 1, 2, 3);
        var ds = new TensorDataset(images, [0, 1], ["x", "y"]);
        var transform = new SampleTransform(Preprocessing.ImageNet with { Channels = 1, CropSize = 2, ResizeSize = 2, Mean = [0], Std = [1] });
        Assert.Throws<ArgumentException>(() => ds.Fill(0, transform, new Random(0), new float[6]));
        var square = new TensorDataset(TorchSharp.torch.arange(8, TorchSharp.torch.ScalarType.Float32).reshape(2, 1, 2, 2), [0, 1], ["x", "y"]);
        var dst = new float[4];
        square.Fill(1, transform, new Random(0), dst);
        Assert.Equal([4f, 5, 6, 7], dst);
        var flips = Enumerable.Range(0, 20).Count(s =>
        {
            square.Fill(1, transform with { Augmentation = Augmentation.Standard }, new Random(s), dst);
            return dst[0] == 5f;
        });
        Assert.InRange(flips, 3, 17);
    }

    [Fact]
    public void TrainingRefusesUnusableDataBeforeWriting()
    {
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        var one = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "one"), 4, "bag"));
        var e = Assert.Throws<DatasetException>(() => Trainer.Train(source, one, null, new TrainOptions()));
        Assert.Contains("at least 2", e.Message);

        var two = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "two"), 1, "bag", "coat"));
        Assert.Contains("too few to hold out", Assert.Throws<DatasetException>(() => Trainer.Train(source, two, null, new TrainOptions())).Message);

        var ckpt = Path.Combine(_dir, "x.ckpt");
        var run = new TrainRunOptions { Checkpoint = new CheckpointOptions { Path = ckpt } };
        var tooMany = new TrainOptions { Mode = TrainMode.FineTune, UnfreezeTop = 99, ValidationSplit = 0 };
        var u = Assert.Throws<InvalidOptionException>(() => Trainer.Train(source, two, null, tooMany, run));
        Assert.Contains("has 6 layer groups (stem, layer1, layer2, layer3, layer4, head)", u.Message);
        var from = Assert.Throws<InvalidOptionException>(() => Trainer.Train(source, two, null, tooMany with { UnfreezeTop = null, UnfreezeFrom = "layer9" }, run));
        Assert.Contains("no layer group 'layer9'", from.Message);
        Assert.False(File.Exists(ckpt));

        var val = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "val"), 1, "bag", "dress"));
        Assert.Contains("'dress' not among", Assert.Throws<DatasetException>(() => Trainer.Train(source, two, val, new TrainOptions())).Message);
    }
}
