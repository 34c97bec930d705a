using TransferSharp.Onnx;
using TransferSharp.Vision.Zoo;
using Xunit;

namespace TransferSharp.Tests.Onnx;

/// <summary>Importing by another graph output: the feature node follows the output, and one that does not feed
/// it is an error naming the file.</summary>
[Trait("Category", "Onnx")]
public sealed class ImportOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ts-import-output").FullName;

    [Fact]
    public void A_feature_node_off_the_chosen_output_is_an_onnx_error()
    {
        var path = Path.Combine(_dir, "resnet18.onnx");
        using (var model = ModelZoo.Create("resnet18", new ModelOptions { NumClasses = 3, ImageSize = 64 }))
            OnnxExporter.Export(model, path, new OnnxExportOptions { IncludeFeatures = true });

        var features = OnnxImporter.Import(path, new OnnxImportOptions { Output = OnnxExporter.FeaturesOutputName });
        Assert.NotNull(features.Graph.FeatureNode);
        Assert.Null(features.Graph.ClassifierNode);

        var e = Assert.Throws<OnnxException>(() => OnnxImporter.Import(path, new OnnxImportOptions { Output = OnnxExporter.FeaturesOutputName, FeatureNode = "fc" }));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("does not feed the output", e.Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
