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
        Skip.IfNot(File.Exists(Reference("fortunes.train.txt")), "reference embeddings missing");
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
        Assert.Equal(classifier.Vocabulary.Tokens, loaded.Vocabulary.Tokens);
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
        int the = frozen.Vocabulary.IndexOf("the");
        Assert.True(the > 1);
        Assert.Equal(vectors["the"], weight[the].data<float>().ToArray());
        Assert.All(weight[0].data<float>().ToArray(), x => Assert.Equal(0f, x));
        Assert.Equal((long)(16 + 1) * 6, frozen.TrainableParameters);
        // An out-of-vocabulary word of ft.bin gets exactly fastText's subword vector.
        var oov = frozen.Vocabulary.Tokens.Skip(2).First(t => !vectors.Contains(t) && !vectors.Contains(t.ToLowerInvariant()));
        Assert.Equal(vectors.Subwords!.GetWordVector(oov), weight[frozen.Vocabulary.IndexOf(oov)].data<float>().ToArray());
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
