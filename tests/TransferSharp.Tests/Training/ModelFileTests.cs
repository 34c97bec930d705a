using TransferSharp.Vision.Graph;
using System.Text;
using System.Text.Json;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class ModelFileTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private VisionModel TrainSmall(HeadKind head = HeadKind.Mlp)
    {
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "data"), 4, "bag", "coat", "sandal"));
        var model = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        Trainer.Train(model, data, null, new TrainOptions { Epochs = 2, ValidationSplit = 0.25, Head = new HeadSpec { Kind = head, Hidden = 8 } });
        return model;
    }

    [Fact]
    public void ModelFileRoundTripsAndFollowsTheSafetensorsFormat()
    {
        var path = Path.Combine(_dir, "m.safetensors");
        using var model = TrainSmall();
        model.Save(path);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));

        // Read the file with the format's own rules, independently of our reader.
        var bytes = File.ReadAllBytes(path);
        ulong headerLength = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0ul, (8 + headerLength) % 8);
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength).TrimEnd(' '));
        var meta = header.RootElement.GetProperty("__metadata__");
        Assert.Equal("model/2", meta.GetProperty("transfersharp").GetString());
        Assert.Equal("pt", meta.GetProperty("format").GetString());
        Assert.Equal(["bag", "coat", "sandal"], JsonSerializer.Deserialize<string[]>(meta.GetProperty("class_names").GetString()!)!);
        Assert.Contains("\"zoo\":\"resnet18\"", meta.GetProperty("architecture").GetString());
        Assert.Contains("\"cropSize\":32", meta.GetProperty("preprocessing").GetString());
        Assert.Contains("\"history\"", meta.GetProperty("training").GetString());
        long dataStart = 8 + (long)headerLength, expectedOffset = 0;
        var state = model.Module.state_dict();
        var entries = header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
            .OrderBy(p => p.Value.GetProperty("data_offsets")[0].GetInt64()).ToList();
        Assert.Equal(state.Count, entries.Count);
        foreach (var e in entries)
        {
            var offsets = e.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            Assert.Equal(expectedOffset, offsets[0]);
            expectedOffset = offsets[1];
            var shape = e.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var t = state[e.Name];
            Assert.Equal(t.shape, shape);
            var dtype = e.Value.GetProperty("dtype").GetString();
            Assert.Equal(t.dtype == ScalarType.Int64 ? "I64" : "F32", dtype);
            long size = shape.Aggregate(1L, (a, b) => a * b) * (dtype == "I64" ? 8 : 4);
            Assert.Equal(size, offsets[1] - offsets[0]);
            if (dtype == "F32" && size > 0)
            {
                using var c = t.contiguous();
                Assert.Equal(c.data<float>()[0], BitConverter.ToSingle(bytes, (int)(dataStart + offsets[0])));
            }
        }
        Assert.Equal(bytes.LongLength, dataStart + expectedOffset);

        using var loaded = VisionModel.Load(path);
        Assert.Equal(model.Labels, loaded.Labels);
        Assert.Equal(model.Architecture, loaded.Architecture);
        Assert.Equal(model.Preprocessing.CropSize, loaded.Preprocessing.CropSize);
        Assert.Equal(2, loaded.Training!.History.Count);
        // Each epoch says how fast its training pass ran and how long its steps waited for the loader (stored with the model).
        Assert.All(loaded.Training.History, h =>
        {
            Assert.True(h.TrainImagesPerSecond > 0, "images/s of the training pass");
            Assert.InRange(h.LoaderWaitSeconds, 0, h.Seconds);
        });
        using var x = torch.randn(2, 3, 32, 32, generator: new torch.Generator(1));
        model.Module.eval();
        loaded.Module.eval();
        using (no_grad())
        using (var a = model.Module.forward(x))
        using (var b = loaded.Module.forward(x))
            Assert.True(a.eq(b).all().item<bool>(), $"max difference {(a - b).abs().max().item<float>()}");

        // `transfer predict` opens model files through VisionModel.
        using var vision = VisionModel.Load(path);
        Assert.Equal(["bag", "coat", "sandal"], vision.Labels);
    }

    [Fact]
    public void FilesThatAreNotOurModelsOrDoNotFitTheirArchitectureAreRefused()
    {
        var path = Path.Combine(_dir, "m.safetensors");
        using (var model = TrainSmall(HeadKind.Linear)) model.Save(path);

        // The same tensors under another architecture's name: the metadata edited in place.
        var bytes = File.ReadAllBytes(path);
        int headerLength = (int)BitConverter.ToUInt64(bytes, 0);
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        var edited = header.Replace("\\u0022zoo\\u0022:\\u0022resnet18\\u0022", "\\u0022zoo\\u0022:\\u0022resnet34\\u0022")
            .Replace("\"zoo\":\"resnet18\"", "\"zoo\":\"resnet34\"");
        Assert.NotEqual(header, edited);
        Assert.Equal(header.Length, edited.Length);
        var other = Path.Combine(_dir, "other.safetensors");
        File.WriteAllBytes(other, [.. bytes[..8], .. Encoding.UTF8.GetBytes(edited), .. bytes[(8 + headerLength)..]]);
        var e = Assert.Throws<ModelFileException>(() => VisionModel.Load(other));
        Assert.Contains("another model", e.Message);
        Assert.Contains("missing", e.Message);

        // A plain weights file (no architecture in its metadata).
        var plain = Path.Combine(_dir, "plain.safetensors");
        using (var t = torch.ones(2, 2)) TransferSharp.Weights.SafeTensors.Write(plain, [new("w", t)]);
        Assert.Contains("not a TransferSharp model file", Assert.Throws<ModelFileException>(() => VisionModel.Load(plain)).Message);
        Assert.False(ModelFile.IsModelFile(plain));

        var truncated = Path.Combine(_dir, "truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.ThrowsAny<InvalidFileException>(() => VisionModel.Load(truncated));
    }

    /// <summary>Files of the first format (written by main before the reference head names) still load, give the
    /// logits they gave then, and come back with today's names.</summary>
    [Theory]
    [InlineData("tiny_linear", new[] { "fc.weight", "fc.bias" })]
    [InlineData("tiny_mlp", new[] { "fc_hidden.weight", "fc_hidden.bias", "fc.weight", "fc.bias" })]
    public void ModelFilesOfTheFirstFormatStillLoad(string name, string[] headTensors)
    {
        var path = Path.Combine(Paths.TestData, "model_v1", name + ".safetensors");
        var expected = File.ReadAllText(Path.Combine(Paths.TestData, "model_v1", name + ".logits.txt"))
            .Split(' ').Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(ModelFile.IsModelFile(path));
        using var model = VisionModel.Load(path);
        Assert.Equal(["ant", "bee", "cat"], model.Labels);
        Assert.Equal("fc", model.Module.Graph.ClassifierNode);
        var state = model.Module.state_dict();
        Assert.All(headTensors, t => Assert.Contains(t, state.Keys));
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("head.", StringComparison.Ordinal));
        model.Module.eval();
        using var input = arange(0, 3 * 16 * 16, dtype: float32).reshape(1, 3, 16, 16).div(768.0f).sub(0.5f);
        using var _ = no_grad();
        var logits = model.Module.forward(input).data<float>().ToArray();
        Assert.Equal(expected.Length, logits.Length);
        for (int i = 0; i < logits.Length; i++) Assert.Equal(expected[i], logits[i], 6);

        // Saved again, it is a file of today's format that loads to the same model.
        var again = Path.Combine(_dir, name + ".safetensors");
        model.Save(again);
        Assert.Equal("model/2", TransferSharp.Weights.SafeTensors.ReadMetadata(again)[ModelFile.FormatKey]);
        using var reloaded = VisionModel.Load(again);
        reloaded.Module.eval();
        Assert.True(reloaded.Module.forward(input).allclose(model.Module.forward(input)));
    }
}
