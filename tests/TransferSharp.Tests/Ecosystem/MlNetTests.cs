using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using TransferSharp.ML;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Preprocessing;
using Xunit;

namespace TransferSharp.Tests.Ecosystem;

/// <summary>The ML.NET components in ordinary pipelines: trained, saved with mlContext.Model.Save, loaded in another
/// process (the MlNetPipeline sample) and compared score for score.</summary>
[Trait("Category", "MlNet")]
public class MlNetTests
{
    private static readonly string Fashion = Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset");
    private static readonly string[] Classes = ["bag", "sneaker", "trouser"];

    public sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Scored
    {
        public string ImagePath { get; set; } = "";
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private static Row[] Rows(string split, int perClass) => Classes.SelectMany(c =>
        Directory.GetFiles(Path.Combine(Fashion, split, c)).Order(StringComparer.Ordinal).Take(perClass)
            .Select(f => new Row { ImagePath = f, Label = c })).ToArray();

    /// <summary>Predicts in this process, saves, predicts in a fresh one: same labels, bit-identical scores.</summary>
    private static void AssertSameInAnotherProcess(MLContext ml, ITransformer model, DataViewSchema schema, Row[] test)
    {
        var here = ml.Data.CreateEnumerable<Scored>(model.Transform(ml.Data.LoadFromEnumerable(test)), reuseRowObject: false).ToArray();
        var dir = Paths.NewTempDir();
        try
        {
            var zip = Path.Combine(dir, "model.zip");
            ml.Model.Save(model, schema, zip);
            var (code, stdout, stderr) = Samples.Run("MlNetPipeline", ["predict", zip, .. test.Select(t => t.ImagePath)]);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(test.Length, lines.Length);
            for (int i = 0; i < test.Length; i++)
            {
                var expected = string.Join('\t', [here[i].ImagePath, here[i].PredictedLabel, .. here[i].Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))]);
                Assert.Equal(expected, lines[i].TrimEnd('\r'));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Featurizer_with_an_mlnet_trainer_saves_and_predicts_identically_in_another_process()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows("train", 8));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.FeaturizeImage("Features", nameof(Row.ImagePath), model: "resnet18_cntk"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        using var owned = model as IDisposable; // disposing deletes ApplyOnnxModel's temporary copy of the model

        var test = Rows("test", 3);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(Rows("test", 10))));
        Assert.True(metrics.MicroAccuracy >= 0.8, $"3 easy classes from 8 images each: accuracy {metrics.MicroAccuracy:P1}");
        AssertSameInAnotherProcess(ml, model, train.Schema, test);
    }

    [Fact]
    public void Fine_tuning_trainer_saves_and_predicts_identically_in_another_process()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows("train", 4));
        var trainer = ml.MulticlassClassification.Trainers.FineTuneImageClassifier(new FineTuneImageOptions
        {
            Epochs = 2, HeadEpochs = 1, Unfreeze = 1,
            Configure = run => run.WithOptions(o => o with { BatchSize = 6 }),
        });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        using var owned = model as IDisposable; // disposing deletes ApplyOnnxModel's temporary copy of the model
        Assert.Equal(2, trainer.LastTraining!.History.Count);

        var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows("test", 2)));
        var rows = ml.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false).ToArray();
        Assert.All(rows, r => Assert.Equal(Classes.Length, r.Score.Length));
        Assert.All(rows, r => Assert.Equal(1.0, r.Score.Sum(), 4));
        Assert.All(rows, r => Assert.Equal(Classes[Array.IndexOf(r.Score, r.Score.Max())], r.PredictedLabel));
        AssertSameInAnotherProcess(ml, model, train.Schema, Rows("test", 1));
    }

    public sealed class BytesRow
    {
        [VectorType] public byte[] Image { get; set; } = [];
    }

    public sealed class Features
    {
        public float[] Features_ { get; set; } = [];
    }

    [Fact]
    public void Featurizer_reads_encoded_bytes_as_it_reads_paths()
    {
        var ml = new MLContext(seed: 1);
        var files = Rows("test", 1).Select(r => r.ImagePath).ToArray();
        using var model = TransferSharp.Vision.VisionModel.Load("resnet18_cntk");
        var fromPaths = ml.Transforms.FeaturizeImage("Features_", nameof(Row.ImagePath), model);
        var fromBytes = ml.Transforms.FeaturizeImage("Features_", nameof(BytesRow.Image), model);
        Assert.Equal(512, fromPaths.FeatureCount);
        var a = Featurize(ml, fromPaths, ml.Data.LoadFromEnumerable(files.Select(f => new Row { ImagePath = f })));
        var b = Featurize(ml, fromBytes, ml.Data.LoadFromEnumerable(files.Select(f => new BytesRow { Image = File.ReadAllBytes(f) })));
        Assert.Equal(files.Length, a.Length);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i]);

        // The same features as TransferSharp's own ONNX Runtime predictor on the same export.
        using var predictor = OnnxRuntimePredictor.FromModel(model);
        using var batch = ImageTransforms.LoadBatch(files, model.Preprocessing);
        using var ours = predictor.Features(batch);
        var expected = ours.data<float>().ToArray();
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < 512; j++)
                Assert.True(Math.Abs(a[i][j] - expected[i * 512 + j]) <= 1e-5f * (1 + Math.Abs(expected[i * 512 + j])), $"image {i}, feature {j}: {a[i][j]} vs {expected[i * 512 + j]}");
    }

    private static float[][] Featurize(MLContext ml, ImageFeaturizerEstimator estimator, IDataView data)
    {
        var fitted = estimator.Fit(data);
        using var owned = fitted as IDisposable;
        return ml.Data.CreateEnumerable<Features>(fitted.Transform(data), reuseRowObject: false).Select(f => f.Features_).ToArray();
    }

    public sealed class NumberRow
    {
        public float ImagePath { get; set; }
    }

    [Fact]
    public void Wrong_columns_and_unreadable_images_are_named()
    {
        var ml = new MLContext(seed: 1);
        using var model = TransferSharp.Vision.VisionModel.Load("resnet18_cntk");
        var estimator = ml.Transforms.FeaturizeImage("Features", "ImagePath", model);
        var numbers = ml.Data.LoadFromEnumerable(new[] { new NumberRow { ImagePath = 1 } });
        var e = Assert.Throws<ArgumentException>(() => estimator.Fit(numbers));
        Assert.Contains("'ImagePath'", e.Message);
        var missing = Assert.Throws<ArgumentException>(() => ml.Transforms.FeaturizeImage("Features", "Photo", model).Fit(numbers));
        Assert.Contains("no column 'Photo'", missing.Message);

        var notAnImage = Path.Combine(Paths.RepoRoot, "README.md");
        var data = ml.Data.LoadFromEnumerable(new[] { new Row { ImagePath = notAnImage } });
        var fitted = estimator.Fit(data);
        using var owned = fitted as IDisposable;
        var transformed = fitted.Transform(data);
        var error = Record.Exception(() => transformed.GetColumn<float[]>("Features").ToArray());
        Assert.NotNull(error);
        var decode = error as ImageDecodeException ?? error.InnerException as ImageDecodeException;
        Assert.True(decode is not null, $"expected an ImageDecodeException, got {error}");
        Assert.Contains("README.md", decode.Message);
    }

    [Fact]
    public void Fine_tuning_trainer_needs_a_key_label()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows("train", 1));
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.FineTuneImageClassifier().Fit(data));
        Assert.Contains("MapValueToKey", e.Message);
    }
}
