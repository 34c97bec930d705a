using System.Text.Json;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>The `transfer vectors …` and `transfer text …` commands, run in-process through the CLI's entry point.</summary>
[Collection("Console")]
public sealed class TextCliTests : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();
    private static string Reference(string name) => Path.Combine(Paths.Shared, "reference", "embeddings", name);

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static JsonElement RunJson(params string[] args) => CliRunner.RunJson(args);

    private static void RequireReference() => Paths.RequireFixture(Reference("w2v.bin"), "reference embeddings");

    [SkippableFact]
    public void Neighbors_similarity_and_analogy_answer_as_gensim()
    {
        RequireReference();
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Reference("expected.json")));
        var ms = expected.RootElement.GetProperty("word2vec_most_similar").GetProperty("entries")[0];
        var query = ms.GetProperty("query").GetString()!;
        var ours = RunJson("vectors", "neighbors", "--vectors", Reference("w2v.txt"), query, "--top", "10")[0].GetProperty("neighbors");
        Assert.Equal(ms.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("word").GetString()), ours.EnumerateArray().Select(r => r.GetProperty("word").GetString()));
        var sim = expected.RootElement.GetProperty("word2vec_similarity").GetProperty("entries")[0];
        var s = RunJson("vectors", "similarity", "--vectors", Reference("w2v.bin"), sim.GetProperty("word1").GetString()!, sim.GetProperty("word2").GetString()!)[0];
        Assert.Equal(sim.GetProperty("similarity").GetDouble(), s.GetProperty("cosine").GetDouble(), 4);
        var an = expected.RootElement.GetProperty("word2vec_analogy").GetProperty("entries")[0];
        var a = RunJson("vectors", "analogy", "--vectors", Reference("glove.txt"), an.GetProperty("a").GetString()!, an.GetProperty("b").GetString()!, an.GetProperty("c").GetString()!);
        Assert.Equal(an.GetProperty("results")[0].GetProperty("word").GetString(), a.GetProperty("answers")[0].GetProperty("word").GetString());
        var oov = RunJson("vectors", "neighbors", "--vectors", Reference("ft.bin"), "computr", "program", "--top", "3");
        Assert.False(oov[0].GetProperty("inVocabulary").GetBoolean());
        Assert.Equal(3, oov[1].GetProperty("neighbors").GetArrayLength());
    }

    [SkippableFact]
    public void Convert_info_and_evaluate()
    {
        RequireReference();
        var output = Path.Combine(_temp, "out.txt");
        var c = RunJson("vectors", "convert", "--vectors", Reference("w2v.bin"), "--out", output);
        Assert.Equal("word2vec-text", c.GetProperty("outputFormat").GetString());
        Assert.True(File.ReadAllBytes(Reference("w2v.txt")).AsSpan().SequenceEqual(File.ReadAllBytes(output)));
        var info = RunJson("vectors", "info", "--vectors", Reference("ft.bin"));
        Assert.Equal(14533, info.GetProperty("words").GetInt32());
        Assert.Equal("skipgram", info.GetProperty("fastText").GetProperty("model").GetString());
        var data = Path.Combine(Paths.RepoRoot, "tests", "TransferSharp.Tests", "Text", "Data");
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(data, "evaluation_expected.json")));
        var e = RunJson("vectors", "evaluate", "--vectors", Reference("w2v.bin"), "--analogies", Path.Combine(data, "analogies.txt"), "--pairs", Path.Combine(data, "pairs.tsv"));
        Assert.Equal(expected.RootElement.GetProperty("analogies")[0].GetProperty("score").GetDouble(), e.GetProperty("analogies").GetProperty("accuracy").GetDouble(), 12);
        Assert.Equal(expected.RootElement.GetProperty("pairs")[0].GetProperty("spearman")[0].GetDouble(), e.GetProperty("pairs").GetProperty("spearman").GetDouble(), 6);
    }

    [SkippableFact]
    public void Text_train_predict_evaluate()
    {
        RequireReference();
        var train = Path.Combine(_temp, "train.txt");
        File.WriteAllLines(train, File.ReadLines(Reference("fortunes.train.txt")).Take(200));
        var model = Path.Combine(_temp, "m.safetensors");
        var val = Path.Combine(_temp, "val.txt");
        File.WriteAllLines(val, File.ReadLines(Reference("fortunes.train.txt")).Skip(200).Take(100));
        var t = RunJson("text", "train", "--vectors", Reference("ft.bin"), "--data", train, "--val", val, "--test", Reference("fortunes.test.txt"), "--model", "bow",
            "--epochs", "2", "--schedule", "cosine", "--warmup", "0.5", "--patience", "3", "--out", model);
        Assert.True(File.Exists(model));
        Assert.False(File.Exists(model + ".checkpoint"), "the checkpoint is deleted when training completes");
        Assert.Equal(956, t.GetProperty("test").GetProperty("count").GetInt32());
        Assert.Equal(2, t.GetProperty("history").GetArrayLength());
        Assert.InRange(t.GetProperty("bestEpoch").GetInt32(), 1, 2);
        // Cosine after half an epoch of warm-up: the rate decays towards 0 over the second epoch.
        var rates = t.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("learningRate").GetDouble()).ToArray();
        Assert.True(rates[1] < rates[0] / 10 && rates[0] < 1e-3, string.Join(", ", rates));
        var p = RunJson("text", "predict", "--model", model, "The computer crashed.", "--top", "2");
        Assert.Equal(2, p[0].GetProperty("labels").GetArrayLength());
        var ev = RunJson("text", "evaluate", "--model", model, "--data", Reference("fortunes.test.txt"));
        Assert.Equal(t.GetProperty("test").GetProperty("accuracy").GetDouble(), ev.GetProperty("evaluation").GetProperty("accuracy").GetDouble(), 12);
        var ft = RunJson("text", "evaluate", "--model", Reference("sup.bin"), "--data", Reference("fortunes.test.txt"));
        Assert.Equal(0.4027196652719665, ft.GetProperty("fastTextTest").GetProperty("precision").GetDouble(), 12);
        // One label per line: accuracy over every line is fastText's P@1 (predicted labels lose their __label__ prefix).
        Assert.Equal(0.4027196652719665, ft.GetProperty("evaluation").GetProperty("accuracy").GetDouble(), 12);
    }

    [Fact]
    public void Text_train_resumes_a_stopped_run_from_its_checkpoint()
    {
        var words = new[] { "red", "green", "blue", "cyan", "pink", "grey" };
        var lines = Enumerable.Range(0, 60).Select(i => $"__label__{(i % 6 < 3 ? "a" : "b")} {words[i % 6]} {words[(i * 7 + 1) % 6]} {words[(i / 6) % 6]}").ToArray();
        var data = Path.Combine(_temp, "train.txt");
        File.WriteAllLines(data, lines);
        var model = Path.Combine(_temp, "m.safetensors");
        string[] args = ["text", "train", "--data", data, "--embedding-dim", "8", "--epochs", "3", "--lr", "0.02", "--schedule", "cosine", "--out", model];
        var whole = RunJson(args);
        // A run stopped after its first epoch leaves the checkpoint `text train` looks for (OUT.checkpoint); the options
        // are what the CLI builds from the same flags.
        var options = new TransferSharp.Text.Classification.TextClassifierOptions
        {
            EmbeddingDimension = 8, Epochs = 3, LearningRate = 0.02, Schedule = TransferSharp.Training.ScheduleKind.Cosine,
        };
        TransferSharp.Training.EpochRecord? stoppedEpoch = null;
        var run = new TransferSharp.Training.TrainRunOptions
        {
            Checkpoint = new TransferSharp.Training.CheckpointOptions { Path = model + ".checkpoint" },
            OnEpoch = e => { stoppedEpoch = e; throw new OperationCanceledException(); },
        };
        Assert.ThrowsAny<OperationCanceledException>(() => TransferSharp.Text.Classification.TextClassifier.Train(
            TransferSharp.Text.Classification.TextDataset.Load(data), null, null, options, run));
        var resumed = RunJson([.. args, "--resume"]);
        Assert.False(File.Exists(model + ".checkpoint"));
        double[] Losses(JsonElement r) => r.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("trainLoss").GetDouble()).ToArray();
        Assert.Equal(3, Losses(resumed).Length);
        Assert.Equal(Losses(whole), Losses(resumed));
        // The first epoch is the stopped run's (its record came from the checkpoint, wall time and all), not trained again.
        Assert.Equal(stoppedEpoch!.Seconds, resumed.GetProperty("history")[0].GetProperty("seconds").GetDouble());
        Assert.NotEqual(stoppedEpoch.Seconds, whole.GetProperty("history")[0].GetProperty("seconds").GetDouble());
    }

    [SkippableFact]
    public void Bad_input_is_a_clear_error_with_exit_code_2()
    {
        RequireReference();
        var cut = Path.Combine(_temp, "cut.bin");
        File.WriteAllBytes(cut, File.ReadAllBytes(Reference("w2v.bin"))[..5000]);
        // Exit code 2 is the CLI's "bad input" (message printed, no stack trace). The messages themselves are
        // tested on the library; the CLI's stderr console is created once per process, so it cannot be captured here.
        var (code, _, _) = Run("vectors", "info", "--vectors", cut);
        Assert.Equal(2, code);
        var (code2, _, _) = Run("vectors", "neighbors", "--vectors", Reference("w2v.bin"), "notawordatall");
        Assert.Equal(2, code2);
        var (code3, _, _) = Run("text", "train", "--data", Reference("fortunes.train.txt"), "--model", "transformer", "--out", Path.Combine(_temp, "x.safetensors"));
        Assert.Equal(2, code3);
        Assert.Empty(Directory.GetFiles(_temp, "*.safetensors"));
    }
}
