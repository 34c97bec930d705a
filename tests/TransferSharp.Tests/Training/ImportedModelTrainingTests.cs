using TorchSharp;
using TransferSharp.Vision;
using TransferSharp.Data;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

/// <summary>
/// Training from an ONNX file that is not in the zoo: the imported graph becomes the body, is stored whole in the
/// trained model file, and that file alone rebuilds the model (API and CLI). A model file whose stored graph would
/// allocate far more than the file holds is refused.
/// </summary>
[Collection("Console")]
[Trait("Category", "Training")]
public sealed class ImportedModelTrainingTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A network that exists only as an ONNX file: a random resnet18 at 64², exported.</summary>
    private string OnnxFile()
    {
        var path = Path.Combine(_dir, "net.onnx");
        torch.manual_seed(3);
        using var module = ModelZoo.Create("resnet18", new ModelOptions { ImageSize = 64 });
        module.eval();
        OnnxExporter.Export(module, path);
        return path;
    }

    private string Data() => TrainingData.Folder(Path.Combine(_dir, "data"), 4, "bag", "coat", "sandal");

    [Fact]
    public void A_head_trained_on_an_imported_graph_saves_and_reloads_from_the_file_alone()
    {
        var onnx = OnnxFile();
        using var source = VisionModel.Load(onnx);
        Assert.NotNull(source.Architecture);
        Assert.NotNull(source.Architecture!.Graph);
        var trained = source;
        Trainer.Train(source, ImageDataset.FromFolder(Data()), null,
            new TrainOptions { Epochs = 2, ValidationSplit = 0.25, Mode = TrainMode.FineTune, HeadEpochs = 1, UnfreezeTop = 2, BatchSize = 4 });
        var file = Path.Combine(_dir, "m.safetensors");
        trained.Save(file);
        File.Delete(onnx);                                     // the model file must need nothing else

        using var loaded = VisionModel.Load(file);
        Assert.Equal(["bag", "coat", "sandal"], loaded.Labels);
        Assert.StartsWith("onnx:", loaded.Architecture!.Zoo);
        using var scope = NewDisposeScope();
        using var x = torch.randn(2, 3, 64, 64, generator: new torch.Generator(5));
        trained.Module.eval();
        loaded.Module.eval();
        using (no_grad())
            Assert.True(trained.Module.forward(x).allclose(loaded.Module.forward(x), 0, 0), "the reloaded model computes something else");
    }

    [Fact]
    public void Cli_trains_from_an_onnx_file_and_predicts_with_the_result()
    {
        var onnx = OnnxFile();
        var model = Path.Combine(_dir, "cli.safetensors");
        var train = CliRunner.RunJson("train", "--model", onnx, "--data", Data(), "--mode", "head", "--epochs", "3", "--val-split", "0.25", "--out", model);
        Assert.True(File.Exists(model), train.ToString());
        var image = Directory.GetFiles(Path.Combine(_dir, "data", "coat"))[0];
        var predicted = CliRunner.RunJson("predict", "--model", model, image, "--top", "3");
        Assert.Equal(3, predicted.GetProperty("predictions")[0].GetProperty("top").GetArrayLength());
    }

    [Fact]
    public void A_stored_graph_larger_than_its_file_is_refused_before_allocation()
    {
        var onnx = OnnxFile();
        using var source = VisionModel.Load(onnx);
        var trained = source;
        Trainer.Train(source, ImageDataset.FromFolder(Data()), null, new TrainOptions { Epochs = 1 });
        var file = Path.Combine(_dir, "m.safetensors");
        trained.Save(file);
        var (tensors, metadata) = TensorFile.Read(file);
        var arch = metadata["architecture"];
        // Every channel count of the first convolution's output, through the whole stored graph, made absurd.
        var hostile = arch.Replace("\"outChannels\":64", "\"outChannels\":1048576").Replace("\"features\":64", "\"features\":1048576")
            .Replace("\"inChannels\":64", "\"inChannels\":1048576");
        Assert.NotEqual(arch, hostile);
        var bad = Path.Combine(_dir, "hostile.safetensors");
        TensorFile.Write(bad, tensors, new Dictionary<string, string>(metadata) { ["architecture"] = hostile });
        var e = Assert.Throws<ModelFileException>(() => VisionModel.Load(bad));
        Assert.Contains(bad, e.Message);
    }
}
