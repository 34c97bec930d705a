using System.Globalization;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Ecosystem;

/// <summary>The samples of samples/ run as their own processes on small data (they are built with the tests);
/// MlNetPipeline runs in <see cref="MlNetTests"/>.</summary>
[Trait("Category", "Samples")]
public class SampleTests
{
    private static readonly string Fashion = Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset");

    /// <summary>A copy of a few images of three classes: DIR/train/CLASS and DIR/test/CLASS.</summary>
    private static string MiniFolder(int train = 8, int test = 3)
    {
        var dir = Paths.NewTempDir();
        foreach (var c in new[] { "bag", "sneaker", "trouser" })
            foreach (var (split, n) in new[] { ("train", train), ("test", test) })
            {
                Directory.CreateDirectory(Path.Combine(dir, split, c));
                foreach (var f in Directory.GetFiles(Path.Combine(Fashion, split, c)).Order(StringComparer.Ordinal).Take(n))
                    File.Copy(f, Path.Combine(dir, split, c, Path.GetFileName(f)));
            }
        return dir;
    }

    private static string Ok((int Code, string Out, string Err) run)
    {
        Assert.True(run.Code == 0, $"exit {run.Code}\n{run.Out}\n{run.Err}");
        return run.Out;
    }

    [Fact]
    public void Transfer_to_a_folder_then_predict_from_a_console_app()
    {
        var dir = MiniFolder();
        try
        {
            var model = Path.Combine(dir, "fashion.safetensors");
            var trained = Ok(Samples.Run("TransferFolder", [Path.Combine(dir, "train"), model, Path.Combine(dir, "test")]));
            Assert.Contains("trained on 24 images of 3 classes", trained);
            var accuracy = double.Parse(trained.Split("test accuracy ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
            Assert.True(accuracy >= 60, trained);

            var images = Directory.GetFiles(Path.Combine(dir, "test", "trouser"));
            var predicted = Ok(Samples.Run("PredictConsole", [model, .. images])).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(images.Length, predicted.Length);
            Assert.All(predicted, line => Assert.Matches(@": (bag|sneaker|trouser) \d+\.\d %, ", line));
            Assert.Contains(predicted, line => line.Contains(": trouser"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Image_search_by_example_finds_the_query_class()
    {
        var dir = MiniFolder(train: 1);
        try
        {
            var query = Directory.GetFiles(Path.Combine(dir, "train", "trouser"))[0];
            var lines = Ok(Samples.Run("ImageSearch", [Path.Combine(dir, "test"), query, "--top", "2"])).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.StartsWith("9 images embedded with resnet18_cntk", lines[0]);
            Assert.Equal(3, lines.Length);
            Assert.Contains("  trouser  ", lines[1]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Sentence_similarity_over_word_vectors()
    {
        var vectors = Path.Combine(Paths.EmbeddingFixtures, "ft.bin");
        Assert.True(File.Exists(vectors), $"embedding fixture missing: {vectors}");
        var lines = Ok(Samples.Run("SentenceSimilarity", [vectors, "--sif", "the program crashed", "the software failed", "a fortune cookie"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        var scores = lines.Select(l => double.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture)).ToArray();
        Assert.All(scores, s => Assert.InRange(s, -1, 1));
        Assert.True(scores[0] > scores[1], string.Join('\n', lines));
    }

    [Fact]
    public void Samples_without_arguments_teach_their_usage()
    {
        foreach (var sample in new[] { "PredictConsole", "TransferFolder", "ImageSearch", "SentenceSimilarity", "MlNetPipeline" })
        {
            var (code, _, err) = Samples.Run(sample, []);
            Assert.Equal(2, code);
            Assert.Contains("usage:", err);
        }
    }
}
