using System.Text;
using TransferSharp.Vision;
using TransferSharp.Tests.Support;
using TransferSharp.Tests.Training;
using TransferSharp.Training;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Weights;
using Xunit;

namespace TransferSharp.Tests.Reliability;

/// <summary>Corrupt images, model files with broken metadata and unknown options through the CLI (in-process):
/// each is a one-line error naming the file, exit code 2, never a stack trace.</summary>
[Collection("Console")]
[Trait("Category", "Reliability")]
public sealed class BadInputCliTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Three kinds of broken image: a PNG cut in half, random bytes named .jpg, an empty file.</summary>
    private string[] BrokenImages(string folder)
    {
        var png = Directory.GetFiles(Path.Combine(TrainingData.Bundled, "train", "bag"))[0];
        var bytes = File.ReadAllBytes(png);
        var truncated = Path.Combine(folder, "truncated.png");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var random = Path.Combine(folder, "random.jpg");
        File.WriteAllBytes(random, [0xff, 0xd8, 0xff, 0xe0, .. Enumerable.Range(0, 600).Select(i => (byte)(i * 37 % 251))]);
        var empty = Path.Combine(folder, "empty.png");
        File.WriteAllBytes(empty, []);
        return [truncated, random, empty];
    }

    private static void AssertNamedError((int Code, string Out, string Err) run, string file)
    {
        Assert.True(run.Code == 2, $"exit {run.Code}: {run.Err}");
        Assert.Contains(file, run.Err.Replace("\n", "").Replace("\r", ""));
        Assert.DoesNotContain("unexpected error", run.Err);
        Assert.DoesNotContain("   at ", run.Err);
    }

    [Fact]
    public void A_bad_image_is_a_named_error_in_predict_evaluate_train_extract_and_the_api()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 3, "bag", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        var common = new[] { "--weights", "none", "--image-size", "32" };
        // Skipped by default: the model trains on the good images.
        var broken = BrokenImages(Path.Combine(data, "bag"));
        CliRunner.RunJson(["train", "--model", "resnet18", .. common, "--data", data, "--mode", "head", "--epochs", "1", "--out", model]);

        foreach (var image in broken)
            AssertNamedError(CliRunner.Run("predict", "--model", model, image), image);
        var good = Directory.GetFiles(Path.Combine(data, "sandal"))[0];
        AssertNamedError(CliRunner.Run("predict", "--model", model, good, broken[0], good), broken[0]);

        var fail = new[] { "--on-bad-image", "fail" };
        AssertNamedError(CliRunner.Run(["evaluate", "--model", model, "--data", data, .. fail]), Path.Combine(data, "bag"));
        AssertNamedError(CliRunner.Run(["extract", "--model", "resnet18", .. common, "--data", data, "--out", Path.Combine(_dir, "f.npy"), .. fail]), Path.Combine(data, "bag"));
        AssertNamedError(CliRunner.Run(["train", "--model", "resnet18", .. common, "--data", data, "--mode", "finetune", "--epochs", "1", "--out", Path.Combine(_dir, "m2.safetensors"), .. fail]), Path.Combine(data, "bag"));

        using var trained = VisionModel.Load(model);
        using var predictor = trained.CreatePredictor();
        var e = Assert.Throws<ImageDecodeException>(() => predictor.Predict([good, broken[1]]));
        Assert.Equal(broken[1], e.FilePath);
    }

    [Fact]
    public void A_model_file_with_invalid_utf8_or_a_lone_surrogate_in_its_metadata_is_named()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        CliRunner.RunJson("train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--mode", "head", "--epochs", "1", "--out", model);
        var original = File.ReadAllBytes(model);
        int at = IndexOf(original, Encoding.ASCII.GetBytes("sandal"));
        Assert.True(at > 0);

        var badUtf8 = original.ToArray();
        badUtf8[at] = 0xff; // "\xffandal": not UTF-8
        var surrogate = original.ToArray();
        Encoding.ASCII.GetBytes("\\udc00").CopyTo(surrogate, at); // a JSON escape of half a surrogate pair
        foreach (var (name, bytes) in new[] { ("utf8.safetensors", badUtf8), ("surrogate.safetensors", surrogate) })
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllBytes(path, bytes);
            var e = Assert.ThrowsAny<InvalidFileException>(() => VisionModel.Load(path));
            Assert.Contains(path, e.Message);
            AssertNamedError(CliRunner.Run("predict", "--model", path, Directory.GetFiles(Path.Combine(data, "bag"))[0]), path);
            AssertNamedError(CliRunner.Run("evaluate", "--model", path, "--data", data), path);
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }

    public static TheoryData<string[]> Commands() => new()
    {
        new[] { "models" }, new[] { "doctor" }, new[] { "summary", "--model", "resnet18" }, new[] { "predict", "--model", "resnet18", "x.jpg" },
        new[] { "export", "--model", "resnet18", "--out", "x.onnx" }, new[] { "train", "--model", "resnet18", "--data", "d", "--out", "m.safetensors" },
        new[] { "extract", "--model", "resnet18", "--data", "d", "--out", "f.npy" }, new[] { "evaluate", "--model", "m.safetensors", "--data", "d" },
        new[] { "vectors", "info", "--vectors", "v.txt" }, new[] { "vectors", "convert", "--vectors", "v.txt", "--out", "v.bin" },
        new[] { "text", "train", "--data", "t.txt", "--out", "t.safetensors" }, new[] { "text", "predict", "--model", "t.safetensors", "hello" },
        new[] { "text", "evaluate", "--model", "t.safetensors", "--data", "t.txt" },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_command_refuses_an_unknown_option(string[] command)
    {
        var (code, output, err) = CliRunner.Run([.. command, "--bogus-option"]);
        Assert.True(code == 2, $"exit {code}: {output}{err}");
        Assert.Contains("Unknown option 'bogus-option'", err);
    }

    [Fact]
    public void Text_predict_and_evaluate_take_the_encoding_errors_option_their_message_cites()
    {
        var missing = Path.Combine(_dir, "missing.bin");
        foreach (var command in new[] { new[] { "text", "predict", "--model", missing, "hi" }, ["text", "evaluate", "--model", missing, "--data", missing] })
        {
            var (code, _, err) = CliRunner.Run([.. command, "--encoding-errors", "replace"]);
            Assert.Equal(2, code);
            Assert.Contains("nosuchfile", string.Concat(err.Where(c => !char.IsWhiteSpace(c)))); // the option was accepted; the file is what is missing
            (code, _, err) = CliRunner.Run([.. command, "--encoding-errors", "ignore"]);
            Assert.Equal(2, code);
            Assert.Contains("--encoding-errorsisfailorreplace", string.Concat(err.Where(c => !char.IsWhiteSpace(c))));
        }
    }

    [Fact]
    public void A_cancelled_command_says_what_it_left_in_its_own_words()
    {
        var cancelled = new OperationCanceledException();
        foreach (var args in new[] { new[] { "train", "--model", "resnet18" }, ["vectors", "convert", "--vectors", "a.txt", "--out", "b.bin"], ["text", "train"] })
            Assert.DoesNotContain("download", Cli.ErrorReporter.CancelledMessage(cancelled, args));
        Assert.Contains("features.parquet.partial/", Cli.ErrorReporter.CancelledMessage(cancelled, ["extract", "--out", "features.parquet"]));
        var download = new DownloadCancelledException("https://example.org/w.pth", "/cache/w.pth.partial", default);
        Assert.Contains("/cache/w.pth.partial", Cli.ErrorReporter.CancelledMessage(download, ["predict", "--model", "resnet50"]));
    }
}
