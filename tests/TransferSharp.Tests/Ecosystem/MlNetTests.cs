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

    /// <summary>
    /// A fresh temp folder for one test: TMPDIR points at it while the test runs (test classes run one at a time),
    /// so MLContext, ML.NET's ONNX transformer and TransferSharp put their temporary files there; a second fresh
    /// folder is the child process's TMPDIR. <see cref="AssertNothingLeft"/> checks that both are empty again.
    /// </summary>
    private sealed class FreshTemp : IDisposable
    {
        private readonly string? _previous = Environment.GetEnvironmentVariable("TMPDIR");
        private readonly string _root = Paths.NewTempDir();

        public FreshTemp()
        {
            foreach (var d in new[] { Temp, Child, Work }) Directory.CreateDirectory(d);
            Environment.SetEnvironmentVariable("TMPDIR", Temp);
            Assert.Equal(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Temp)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.GetTempPath())));
        }

        public string Temp => Path.Combine(_root, "tmp");
        public string Child => Path.Combine(_root, "child-tmp");
        public string Work => Path.Combine(_root, "work");

        public void AssertNothingLeft()
        {
            foreach (var d in new[] { Temp, Child })
            {
                // ".ses" (51 bytes: a time and a session id) is ONNX Runtime's telemetry session file, one per temp
                // folder, rewritten in place by every process that starts ONNX Runtime: not a copy that piles up.
                var left = Directory.GetFileSystemEntries(d, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != ".ses").ToArray();
                Assert.True(left.Length == 0, $"left in {d}: {string.Join(", ", left.Select(f => $"{Path.GetFileName(f)} ({(File.Exists(f) ? new FileInfo(f).Length : 0)} bytes)"))}");
            }
        }

        public void Dispose()
        {
            Environment.SetEnvironmentVariable("TMPDIR", _previous);
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>Predicts in this process, saves, loads and predicts again in this process and in a fresh one (the
    /// MlNetPipeline sample): same labels, bit-identical scores.</summary>
    private static void AssertSameAfterLoading(MLContext ml, ITransformer model, DataViewSchema schema, Row[] test, FreshTemp temp)
    {
        var here = Lines(ml, model, test);
        var zip = Path.Combine(temp.Work, "model.zip");
        ml.Model.Save(model, schema, zip);
        var loaded = ml.Model.Load(zip, out _);
        using (loaded as IDisposable) Assert.Equal(here, Lines(ml, loaded, test));

        var (code, stdout, stderr) = Samples.Run("MlNetPipeline", ["predict", zip, .. test.Select(t => t.ImagePath)],
            environment: new Dictionary<string, string> { ["TMPDIR"] = temp.Child });
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Equal(here, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray());
    }

    /// <summary>What the sample's predict prints: path, label, scores (round-trip format).</summary>
    private static string[] Lines(MLContext ml, ITransformer model, Row[] rows) =>
        ml.Data.CreateEnumerable<Scored>(model.Transform(ml.Data.LoadFromEnumerable(rows)), reuseRowObject: false)
            .Select(p => string.Join('\t', [p.ImagePath, p.PredictedLabel, .. p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))]))
            .ToArray();

    [Fact]
    public void Featurizer_with_an_mlnet_trainer_saves_and_predicts_identically_in_another_process()
    {
        using var temp = new FreshTemp();
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows("train", 8));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.FeaturizeImage("Features", nameof(Row.ImagePath), model: "resnet18_cntk"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        using (model as IDisposable) // disposing deletes the ONNX file the pipeline's ONNX Runtime step reads
        {
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(Rows("test", 10))));
            Assert.True(metrics.MicroAccuracy >= 0.8, $"3 easy classes from 8 images each: accuracy {metrics.MicroAccuracy:P1}");
            AssertSameAfterLoading(ml, model, train.Schema, Rows("test", 3), temp);
        }
        temp.AssertNothingLeft();
    }

    [Fact]
    public void Fine_tuning_trainer_saves_and_predicts_identically_in_another_process()
    {
        using var temp = new FreshTemp();
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows("train", 4));
        var trainer = ml.MulticlassClassification.Trainers.FineTuneImageClassifier(new FineTuneImageOptions
        {
            Epochs = 2, HeadEpochs = 1, Unfreeze = 1,
            Configure = run => run.WithOptions(o => o with { BatchSize = 6 }),
        });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        using (model as IDisposable)
        {
            Assert.Equal(2, trainer.LastTraining!.History.Count);
            var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows("test", 2)));
            var rows = ml.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false).ToArray();
            Assert.All(rows, r => Assert.Equal(Classes.Length, r.Score.Length));
            Assert.All(rows, r => Assert.Equal(1.0, r.Score.Sum(), 4));
            Assert.All(rows, r => Assert.Equal(Classes[Array.IndexOf(r.Score, r.Score.Max())], r.PredictedLabel));
            AssertSameAfterLoading(ml, model, train.Schema, Rows("test", 1), temp);
        }
        temp.AssertNothingLeft();
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
        using var temp = new FreshTemp();
        var ml = new MLContext(seed: 1);
        var files = Rows("test", 1).Select(r => r.ImagePath).ToArray();
        using var model = TransferSharp.Vision.VisionModel.Load("resnet18_cntk");
        var fromPaths = ml.Transforms.FeaturizeImage("Features_", nameof(Row.ImagePath), model);
        var fromBytes = ml.Transforms.FeaturizeImage("Features_", nameof(BytesRow.Image), model);
        Assert.Equal(512, fromPaths.FeatureCount);
        // A model file left by a process that is gone (no process can have an id above pid_max) is swept by the next
        // Fit; a file of another naming is not touched.
        int deadPid = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim()) + 1;
        var stale = Path.Combine(temp.Temp, $"transfersharp-{deadPid}-{Guid.NewGuid():N}.onnx");
        var notOurs = Path.Combine(temp.Temp, "transfersharp-notes.onnx");
        File.WriteAllText(stale, "left by a killed process");
        File.WriteAllText(notOurs, "someone else's");
        var a = Featurize(ml, fromPaths, ml.Data.LoadFromEnumerable(files.Select(f => new Row { ImagePath = f })));
        Assert.False(File.Exists(stale), "a dead process's model file was not swept");
        Assert.True(File.Exists(notOurs));
        File.Delete(notOurs);
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
        temp.AssertNothingLeft();
    }

    [Fact]
    public void Featurizer_reads_mlnet_images_from_LoadImages_as_it_reads_paths()
    {
        using var temp = new FreshTemp();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows("test", 1).Select(r => new Row { ImagePath = r.ImagePath }));
        using var model = TransferSharp.Vision.VisionModel.Load("resnet18_cntk");
        var fromPaths = Featurize(ml, ml.Transforms.FeaturizeImage("Features_", nameof(Row.ImagePath), model), data);

        // ML.NET's own image loading (an MLImage column), then our featurizer; saved and loaded like any pipeline.
        var pipeline = ml.Transforms.LoadImages("Photo", imageFolder: "", inputColumnName: nameof(Row.ImagePath))
            .Append(ml.Transforms.FeaturizeImage("Features_", "Photo", model));
        var fitted = pipeline.Fit(data);
        using (fitted as IDisposable)
        {
            Assert.Equal(fromPaths, FeaturesOf(ml, fitted, data));
            var zip = Path.Combine(temp.Work, "images.zip");
            ml.Model.Save(fitted, data.Schema, zip);
            var loaded = ml.Model.Load(zip, out _);
            using (loaded as IDisposable) Assert.Equal(fromPaths, FeaturesOf(ml, loaded, data));
        }
        temp.AssertNothingLeft();
    }

    private static float[][] FeaturesOf(MLContext ml, ITransformer model, IDataView data) =>
        ml.Data.CreateEnumerable<Features>(model.Transform(data), reuseRowObject: false).Select(f => f.Features_).ToArray();

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
