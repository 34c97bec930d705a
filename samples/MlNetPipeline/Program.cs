// An ML.NET pipeline with TransferSharp's image featurizer (or its fine-tuning trainer), saved with
// mlContext.Model.Save and loaded again — in this process or another one.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using TransferSharp.ML;

var ml = new MLContext(seed: 1);
switch (args)
{
    case ["train", var dataDir, var modelZip, .. var rest]:
    {
        int perClass = rest is ["--per-class", var n, ..] ? int.Parse(n, CultureInfo.InvariantCulture) : int.MaxValue;
        bool fineTune = rest.Contains("--fine-tune");
        var train = ml.Data.LoadFromEnumerable(ImageRow.FromFolder(Path.Combine(dataDir, "train"), perClass));
        IEstimator<ITransformer> learner = fineTune
            ? ml.MulticlassClassification.Trainers.FineTuneImageClassifier(new FineTuneImageOptions())
            : ml.Transforms.FeaturizeImage("Features", nameof(ImageRow.ImagePath), model: "resnet18_cntk")
                .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy());
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(learner)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        using var owned = model as IDisposable; // disposing deletes the ONNX file the pipeline's ONNX Runtime step reads
        ml.Model.Save(model, train.Schema, modelZip);
        var testDir = Path.Combine(dataDir, "test");
        if (Directory.Exists(testDir))
        {
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(ImageRow.FromFolder(testDir, perClass))));
            Console.WriteLine($"test accuracy {metrics.MicroAccuracy:P1}");
        }
        Console.WriteLine($"saved {modelZip}");
        return 0;
    }
    case ["predict", var modelZip, .. var images] when images.Length > 0:
    {
        var model = ml.Model.Load(modelZip, out _);
        using var owned = model as IDisposable; // disposing deletes ML.NET's temporary copy of the ONNX model
        var rows = images.Select(p => new ImageRow { ImagePath = p, Label = "" });
        foreach (var p in ml.Data.CreateEnumerable<ScoredRow>(model.Transform(ml.Data.LoadFromEnumerable(rows)), reuseRowObject: false))
            Console.WriteLine(string.Join('\t', [p.ImagePath, p.PredictedLabel, .. p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))]));
        return 0;
    }
    default:
        Console.Error.WriteLine("""
            usage: MlNetPipeline train DATA_DIR MODEL_ZIP [--per-class N] [--fine-tune]
                     DATA_DIR/train/<class>/*.png (and DATA_DIR/test/... to report accuracy)
                   MlNetPipeline predict MODEL_ZIP IMAGE...
                     prints path, predicted label and the class scores (tab-separated)
            """);
        return 2;
}

/// <summary>One image and its class (the folder name).</summary>
public sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";

    public static IEnumerable<ImageRow> FromFolder(string dir, int perClass = int.MaxValue) =>
        Directory.GetDirectories(dir).Order(StringComparer.Ordinal).SelectMany(classDir =>
            Directory.GetFiles(classDir).Order(StringComparer.Ordinal).Take(perClass)
                .Select(f => new ImageRow { ImagePath = f, Label = Path.GetFileName(classDir) })).ToList();
}

/// <summary>A prediction.</summary>
public sealed class ScoredRow
{
    public string ImagePath { get; set; } = "";
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
