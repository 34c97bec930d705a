using TransferSharp.Tests.Support;
using TransferSharp.Text;
using TransferSharp.Text.Classification;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text;

/// <summary>Text classifiers on the reference fastText vectors, kept small (a few hundred texts, one or two epochs).</summary>
public sealed class TextClassifierTests : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();
    private static string Reference(string name) => Path.Combine(Paths.Shared, "reference", "embeddings", name);

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static (TextDataset Train, TextDataset Test) Data()
    {
        Paths.RequireFixture(Reference("fortunes.train.txt"), "reference embeddings");
        var train = TextDataset.Load(Reference("fortunes.train.txt"));
        var test = TextDataset.Load(Reference("fortunes.test.txt"));
        return (new TextDataset(train.Examples.Take(300).ToList()), new TextDataset(test.Examples.Take(100).ToList()));
    }

    [SkippableTheory]
    [InlineData(TextModelKind.Bow)]
    [InlineData(TextModelKind.Cnn)]
    [InlineData(TextModelKind.BiLstm)]
    public void Trains_saves_and_loads_with_identical_predictions(TextModelKind kind)
    {
        var (train, test) = Data();
        using var vectors = WordVectors.Load(Reference("ft.bin"));
        var options = new TextClassifierOptions { Model = kind, Epochs = 2, CnnFilters = 8, LstmHidden = 8, LearningRate = 0.01, MaxLength = 48 };
        using var classifier = TextClassifier.Train(train, test, vectors, options);
        Assert.Equal(2, classifier.History.Count);
        Assert.True(classifier.History[1].TrainLoss < classifier.History[0].TrainLoss + 0.5, $"train loss {classifier.History[0].TrainLoss} then {classifier.History[1].TrainLoss}");
        Assert.Equal(6, classifier.Labels.Count);
        Assert.NotNull(classifier.Coverage);
        Assert.Equal(0, classifier.Coverage!.Random);
        Assert.True(classifier.Coverage.Subword > 0, "words outside ft.bin's vocabulary get subword vectors");
        var path = Path.Combine(_temp, "m.safetensors");
        classifier.Save(path);
        Assert.Single(Directory.GetFiles(_temp));
        using var loaded = TextClassifier.Load(path);
        Assert.Equal(classifier.Labels, loaded.Labels);
        Assert.Equal(classifier.Vocabulary!.Tokens, loaded.Vocabulary!.Tokens);
        var texts = test.Examples.Select(e => e.Text).Take(20).ToList();
        var a = classifier.Predict(texts, 3);
        var b = loaded.Predict(texts, 3);
        for (int i = 0; i < texts.Count; i++)
        {
            Assert.Equal(a[i].Select(p => p.Label), b[i].Select(p => p.Label));
            for (int j = 0; j < 3; j++) Assert.Equal(a[i][j].Probability, b[i][j].Probability, 1e-6f);
            Assert.Equal(1f, a[i].Sum(p => p.Probability) + (1 - a[i].Sum(p => p.Probability)), 1e-6f);
        }
        Assert.Equal(classifier.Evaluate(test).Accuracy, loaded.Evaluate(test).Accuracy);
    }

    [SkippableFact]
    public void Embeddings_start_from_the_vectors_and_stay_put_when_frozen()
    {
        var (train, _) = Data();
        using var vectors = WordVectors.Load(Reference("ft.bin"));
        using var frozen = TextClassifier.Train(train, null, vectors, new TextClassifierOptions { Epochs = 1, FreezeEmbeddings = true });
        var path = Path.Combine(_temp, "frozen.safetensors");
        frozen.Save(path);
        using var dict = TransferSharp.Weights.SafeTensors.Read(path);
        var weight = dict["embedding.weight"];
        int the = frozen.Vocabulary!.IndexOf("the");
        Assert.True(the > 1);
        Assert.Equal(vectors["the"], weight[the].data<float>().ToArray());
        Assert.All(weight[0].data<float>().ToArray(), x => Assert.Equal(0f, x));
        Assert.Equal((long)(16 + 1) * 6, frozen.TrainableParameters);
        // An out-of-vocabulary word of ft.bin gets exactly fastText's subword vector.
        var oov = frozen.Vocabulary!.Tokens.Skip(2).First(t => !vectors.Contains(t) && !vectors.Contains(t.ToLowerInvariant()));
        Assert.Equal(vectors.Subwords!.GetWordVector(oov), weight[frozen.Vocabulary!.IndexOf(oov)].data<float>().ToArray());
    }

    [SkippableFact]
    public void Training_can_be_cancelled()
    {
        var (train, _) = Data();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => TextClassifier.Train(train, null, null, new TextClassifierOptions { EmbeddingDimension = 8 }, null, cts.Token));
    }

    [Fact]
    public void Csv_tsv_and_fasttext_files_are_read()
    {
        var csv = Path.Combine(_temp, "d.csv");
        File.WriteAllText(csv, "label,text\npos,\"good, very \"\"good\"\"\nmovie\"\nneg,bad\r\n\nneg,\"\"\n");
        var d = TextDataset.Load(csv);
        Assert.Equal([new TextExample("good, very \"good\"\nmovie", "pos"), new TextExample("bad", "neg"), new TextExample("", "neg")], d.Examples);
        var tsv = Path.Combine(_temp, "d.tsv");
        File.WriteAllText(tsv, "a fine day\tpos\nrain\tneg\n");
        Assert.Equal(["neg", "pos"], TextDataset.Load(tsv).Labels);
        var ft = Path.Combine(_temp, "d.txt");
        File.WriteAllText(ft, "__label__a __label__b two labels\n__label__c one\n");
        var f = TextDataset.Load(ft);
        Assert.Equal(1, f.MultiLabelLines);
        Assert.Equal(new TextExample("two labels", "a"), f.Examples[0]);
        File.WriteAllText(csv, "text,label\n\"never closed,x\n");
        Assert.Contains("never closed", Assert.Throws<InvalidFileException>(() => TextDataset.Load(csv)).Message);
        File.WriteAllText(csv, "only one field\n");
        Assert.Contains("line 1", Assert.Throws<InvalidFileException>(() => TextDataset.Load(csv)).Message);
    }

    /// <summary>A small data set of six colour words, "a" when the first word is red, green or blue (no files needed).</summary>
    private static TextDataset Colours(int count, int offset = 0, bool swapLabels = false)
    {
        var words = new[] { "red", "green", "blue", "cyan", "pink", "grey" };
        return new TextDataset(Enumerable.Range(offset, count).Select(i =>
            new TextExample($"{words[i % 6]} {words[(i * 7 + 1) % 6]} {words[(i / 6) % 6]}", (i % 6 < 3) != swapLabels ? "a" : "b")).ToList());
    }

    [Theory]
    [InlineData(TextModelKind.Cnn)]
    [InlineData(TextModelKind.BiLstm)]
    public void A_run_killed_after_an_epoch_resumes_to_the_weights_of_an_uninterrupted_run(TextModelKind kind)
    {
        var train = Colours(90);
        var validation = Colours(30, offset: 90);
        var options = new TextClassifierOptions
        {
            Model = kind, Epochs = 4, EmbeddingDimension = 8, CnnFilters = 4, LstmHidden = 4, Dropout = 0.5, BatchSize = 16, LearningRate = 0.02,
            EmbeddingLearningRate = 0.005, WeightDecay = 1e-3, Schedule = TransferSharp.Training.ScheduleKind.Cosine, WarmupEpochs = 1, Seed = 9,
        };
        var checkpoint = Path.Combine(_temp, "run.checkpoint");
        using var whole = TextClassifier.Train(train, validation, null, options);

        // The first run is stopped after epoch 2 (as Ctrl+C would stop it); its checkpoint is what a killed process leaves.
        using var cts = new CancellationTokenSource();
        var stopped = new List<TransferSharp.Training.EpochRecord>();
        var first = new TransferSharp.Training.TrainRunOptions
        {
            Checkpoint = new TransferSharp.Training.CheckpointOptions { Path = checkpoint },
            OnEpoch = e => { stopped.Add(e); if (e.Epoch == 2) cts.Cancel(); },
        };
        Assert.ThrowsAny<OperationCanceledException>(() => TextClassifier.Train(train, validation, null, options, first, cts.Token));
        Assert.True(File.Exists(checkpoint));
        var second = new TransferSharp.Training.TrainRunOptions { Checkpoint = new TransferSharp.Training.CheckpointOptions { Path = checkpoint, Resume = true } };
        using var resumed = TextClassifier.Train(train, validation, null, options, second);
        Assert.False(File.Exists(checkpoint), "deleted when training completes");

        Assert.Equal(whole.History.Select(h => (h.Epoch, h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy, h.LearningRate)),
            resumed.History.Select(h => (h.Epoch, h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy, h.LearningRate)));
        Assert.Equal(whole.BestEpoch, resumed.BestEpoch);
        Assert.Equal(stopped, resumed.History.Take(2)); // epochs 1–2 come from the checkpoint (wall times too), not trained again
        string a = Path.Combine(_temp, "whole.safetensors"), b = Path.Combine(_temp, "resumed.safetensors");
        whole.Save(a);
        resumed.Save(b);
        using var wa = TransferSharp.Weights.SafeTensors.Read(a);
        using var wb = TransferSharp.Weights.SafeTensors.Read(b);
        Assert.Equal(wa.Keys.Order(), wb.Keys.Order());
        foreach (var key in wa.Keys) Assert.Equal(wa[key].data<float>().ToArray(), wb[key].data<float>().ToArray());

        // Other settings refuse the checkpoint instead of continuing from it.
        first = first with { OnEpoch = e => { if (e.Epoch == 1) throw new OperationCanceledException(); } };
        Assert.ThrowsAny<OperationCanceledException>(() => TextClassifier.Train(train, validation, null, options, first));
        Assert.Contains("other settings", Assert.Throws<TransferSharp.Training.ModelFileException>(() =>
            TextClassifier.Train(train, validation, null, options with { LearningRate = 0.03 }, second)).Message);
    }

    [Fact]
    public void The_embedding_trains_at_its_own_learning_rate()
    {
        var train = Colours(60);
        float[] Embedding(TextClassifierOptions o)
        {
            using var c = TextClassifier.Train(train, null, null, o with { Epochs = 2, EmbeddingDimension = 8, LearningRate = 0.05, Seed = 6 });
            var path = Path.Combine(_temp, $"e{Guid.NewGuid():N}.safetensors");
            c.Save(path);
            using var dict = TransferSharp.Weights.SafeTensors.Read(path);
            return dict["embedding.weight"].data<float>().ToArray();
        }
        var start = Embedding(new TextClassifierOptions { FreezeEmbeddings = true }); // the same seed draws the same start
        var barely = Embedding(new TextClassifierOptions { EmbeddingLearningRate = 1e-9 });
        var body = Embedding(new TextClassifierOptions());
        // Adam moves a weight by about its learning rate per step: 8 steps at 1e-9 leave the embedding where it started.
        Assert.All(start.Zip(barely), p => Assert.Equal(p.First, p.Second, 1e-6f));
        Assert.True(start.Zip(body).Max(p => Math.Abs(p.First - p.Second)) > 1e-2, "at the body's rate the embedding moves");
    }

    [Fact]
    public void Early_stopping_ends_training_and_keeps_the_best_epoch()
    {
        // Validation labels are the training labels swapped: learning the training data makes validation worse, so no
        // epoch after the first improves on it.
        var train = Colours(60);
        var validation = Colours(30, offset: 60, swapLabels: true);
        var options = new TextClassifierOptions { Epochs = 20, EmbeddingDimension = 8, LearningRate = 0.05, Patience = 2, Seed = 3 };
        using var classifier = TextClassifier.Train(train, validation, null, options);
        Assert.True(classifier.StoppedEarly);
        Assert.True(classifier.History.Count < 20, $"{classifier.History.Count} epochs");
        Assert.Equal(classifier.BestEpoch + options.Patience, classifier.History.Count);
        var best = classifier.History[classifier.BestEpoch - 1];
        Assert.All(classifier.History, h => Assert.True(h.ValidationAccuracy < best.ValidationAccuracy
            || (h.ValidationAccuracy == best.ValidationAccuracy && h.ValidationLoss >= best.ValidationLoss)));
        // The classifier holds the best epoch's weights, not the last epoch's.
        Assert.Equal(best.ValidationAccuracy!.Value, classifier.Evaluate(validation).Accuracy, 12);
    }

    [Fact]
    public void Text_evaluation_is_the_vision_report_with_one_macro_f1()
    {
        var train = Colours(60);
        var test = new TextDataset([.. Colours(24, offset: 60).Examples, new TextExample("red red red", "unseen")]);
        using var classifier = TextClassifier.Train(train, null, null, new TextClassifierOptions { Epochs = 2, EmbeddingDimension = 8, Seed = 4 });
        var report = classifier.Evaluate(test);
        var predicted = classifier.Predict(test.Examples.Select(e => e.Text).ToList()).Select(p => p[0].Label).ToList();
        // The same predictions as vision scores them: class indices over the same classes, the same constructor.
        var names = report.ClassNames;
        var vision = new TransferSharp.Training.EvaluationReport(names, test.Examples.Select(e => names.ToList().IndexOf(e.Label)).ToArray(),
            predicted.Select(p => names.ToList().IndexOf(p)).ToArray());
        Assert.Equal(vision.MacroF1, report.MacroF1, 15);
        Assert.Equal(["a", "b", "unseen"], names);
        // A label the classifier does not know is a miss, and counts in the macro mean with F1 0 (scikit-learn's macro F1).
        Assert.Equal(0, report.PerClass[2].F1);
        Assert.Equal(report.PerClass.Average(c => c.F1), report.MacroF1, 15);
    }

    [Theory]
    [InlineData("bow")]
    [InlineData("cnn")]
    public void Files_written_by_the_first_format_still_load_and_predict_the_same(string kind)
    {
        // Written by main before text training moved onto the shared loop (tests/data/text_classifier_v1/README.md).
        var dir = Path.Combine(Paths.TestData, "text_classifier_v1");
        using var classifier = TextClassifier.Load(Path.Combine(dir, $"tiny_{kind}.safetensors"));
        Assert.Equal(["neg", "pos"], classifier.Labels);
        var texts = File.ReadAllLines(Path.Combine(dir, "probe.txt"));
        using var expected = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, $"tiny_{kind}.predictions.json")));
        var predicted = classifier.Predict(texts, 2);
        for (int i = 0; i < texts.Length; i++)
        {
            var labels = expected.RootElement[i].GetProperty("labels");
            for (int j = 0; j < 2; j++)
            {
                Assert.Equal(labels[j].GetProperty("label").GetString(), predicted[i][j].Label);
                Assert.Equal(labels[j].GetProperty("probability").GetSingle(), predicted[i][j].Probability, 1e-6f);
            }
        }
    }

    [Fact]
    public void A_file_that_is_not_a_classifier_is_refused()
    {
        var path = Path.Combine(_temp, "other.safetensors");
        using (var t = zeros(2, 2)) TransferSharp.Weights.SafeTensors.Write(path, [new("w", t)], new Dictionary<string, string> { ["format"] = "something else" });
        Assert.Contains("not a TransferSharp text classifier", Assert.Throws<InvalidFileException>(() => TextClassifier.Load(path)).Message);
    }
}
