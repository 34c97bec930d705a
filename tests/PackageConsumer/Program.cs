// What a user writes after `dotnet add package TransferSharp.ML`: an ML.NET pipeline with the image featurizer,
// trained on a folder of images (one sub-folder per class) and asked for one prediction; and a sentence embedding.
using Microsoft.Extensions.AI;
using Microsoft.ML;
using TransferSharp.Extensions.AI;
using TransferSharp.ML;
using TransferSharp.Text;

var ml = new MLContext(seed: 1);
var rows = Directory.GetDirectories(args[0]).Order(StringComparer.Ordinal)
    .SelectMany(d => Directory.GetFiles(d).Order(StringComparer.Ordinal).Select(f => new Row { ImagePath = f, Label = Path.GetFileName(d) }))
    .ToArray();
var model = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.FeaturizeImage("Features", "ImagePath", model: "resnet18_cntk"))
    .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
    .Fit(ml.Data.LoadFromEnumerable(rows));
var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);
Console.WriteLine($"predicted: {engine.Predict(new Row { ImagePath = args[1] }).PredictedLabel}");

using var vectors = WordVectors.FromVectors(["good", "day"], [1f, 0f, 0f, 1f], dimension: 2);
using IEmbeddingGenerator<string, Embedding<float>> words = new WordVectorEmbeddingGenerator(vectors, new() { UnitWordVectors = false });
var e = (await words.GenerateAsync(["good day"]))[0];
Console.WriteLine($"embedding: {string.Join(' ', e.Vector.ToArray())}");

public sealed class Row
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

public sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";
}
