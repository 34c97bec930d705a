using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Zoo;
using Xunit;

namespace TransferSharp.Tests.Onnx;

/// <summary>The classifier is stated in the exported file, and both predictors refuse to rank classes of a model
/// without one through the same guard.</summary>
[Trait("Category", "Onnx")]
public sealed class ClassifierGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ts-classifier-guard").FullName;

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void OnnxRuntime_predictor_follows_the_stated_class_count(int classes)
    {
        var path = Path.Combine(_dir, $"resnet18-{classes}.onnx");
        using (var model = ModelZoo.Create("resnet18", new ModelOptions { NumClasses = classes, ImageSize = 64 }))
            OnnxExporter.Export(model, path);
        using var ort = OnnxRuntimePredictor.FromFile(path);
        Assert.Equal(classes.ToString(), ort.Engine.Metadata[OnnxExporter.NumClassesKey]);
        var image = Path.Combine(Paths.RepoRoot, "samples", "cat.jpg");
        if (classes == 0)
        {
            var e = Assert.Throws<TransferSharpException>(() => ort.Predict([image]));
            Assert.Contains("has no classifier", e.Message);
        }
        else Assert.Equal(classes, ort.Predict([image], top: 5).Single().Top.Count);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
