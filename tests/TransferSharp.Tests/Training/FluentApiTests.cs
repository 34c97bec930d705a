using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class FluentApiTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void TrainSaveEvaluatePredictInAFewCalls()
    {
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "train"), 6, "bag", "trouser"));
        var epochs = new List<EpochRecord>();
        using var model = Transfer.From("resnet18").WithWeights("none").WithImageSize(32)
            .Train(train)
            .ValidateOn(train)
            .Head(epochs: 3, HeadKind.Mlp)
            .WithOptions(o => o with { LearningRate = 1e-2, Seed = 1 })
            .Checkpoint(Path.Combine(_dir, "run.ckpt"))
            .Report(null, epochs.Add)
            .Run();
        Assert.Equal(3, epochs.Count);
        Assert.Equal(HeadKind.Mlp, model.Architecture.Head.Kind);
        Assert.Equal(12, model.Training!.ValidationSamples);
        var path = Path.Combine(_dir, "m.safetensors");
        model.Save(path);

        var report = model.Evaluate(train, new EvaluateOptions { TopK = 2 });
        Assert.Equal(12, report.Count);
        Assert.Equal(1.0, report.TopKAccuracy); // two classes: the true one is always in the top 2
        var predictions = model.Predict([train.SourceOf(0)], top: 2);
        Assert.Equal(2, predictions[0].Top.Count);

        // A saved model file is a starting point too: its pooled features.
        var features = Transfer.From(path).ExtractFeatures(train, Path.Combine(_dir, "f.csv"));
        Assert.Equal(512, features.Dimension);
        Assert.True(File.Exists(Path.Combine(_dir, "f.csv")));
    }
}
