using TransferSharp.Tests.Support;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>
/// The timm families load a checkpoint saved in timm's layout, as a user passes it with
/// <c>--weights FILE.safetensors</c>: the file is written from the reference fixture alone (timm's
/// state-dict names, shapes and order, FILL.md's values, <c>num_batches_tracked</c> as int64, the
/// <c>format: pt</c> metadata timm's <c>save_file</c> writes) — not from our model — and the model loaded
/// from it must give the reference's logits.
/// </summary>
[Trait("Category", "Weights")]
public sealed class TimmCheckpointTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    public static TheoryData<string> TimmFixtures()
    {
        var data = new TheoryData<string>();
        foreach (var f in ArchitectureFixture.Files())
        {
            var model = ArchitectureFixture.Load(Path.Combine(Paths.ArchitectureFixtures, f)).Model;
            if (ModelZoo.Contains(model) && ModelZoo.Get(model).Reference == "timm") data.Add(f);
        }
        return data;
    }

    /// <summary>Writes the fixture's state dict as timm would save it.</summary>
    internal static void WriteTimmCheckpoint(ArchitectureFixture fx, string path)
    {
        using var scope = NewDisposeScope();
        var floats = ReferenceFill.Values(fx.StateDict, fx.WeightSeed).ToDictionary(v => v.Name, v => tensor(v.Values).reshape(v.Shape));
        var ordered = fx.StateDict.Select(e => new KeyValuePair<string, Tensor>(e.Name,
            floats.TryGetValue(e.Name, out var t) ? t : zeros(e.Shape, dtype: ScalarType.Int64))).ToList();
        SafeTensors.Write(path, ordered, new Dictionary<string, string> { ["format"] = "pt" });
    }

    [SkippableTheory]
    [MemberData(nameof(TimmFixtures))]
    public void Loads_a_checkpoint_in_timm_layout_and_matches_the_reference(string fixtureFile)
    {
        var fx = ArchitectureFixture.Load(Path.Combine(Paths.ArchitectureFixtures, fixtureFile));
        var file = Path.Combine(_temp, $"{fx.Model}.timm.safetensors");
        WriteTimmCheckpoint(fx, file);

        using var model = VisionModel.Load(fx.Model, file);   // what `transfer predict --model NAME --weights FILE` does
        if (fx.NumClasses == 0)
        {
            // A checkpoint without a classifier (timm's DINOv2): everything but the head loads, and the features match.
            Assert.False(model.Weights!.Report.HeadLoaded);
            model.Module.eval();
            using var s = NewDisposeScope();
            using var g = no_grad();
            var features = model.Module.PooledFeatures(ReferenceFill.Input(fx.InputShape, fx.InputSeed));
            double df = ParityTests.MaxAbsDiff(features, fx.Features);
            output.WriteLine($"{fx.Model}: features max |diff| {df:G3} (tolerance {fx.ToleranceFeatures:G3})");
            Assert.True(df <= fx.ToleranceFeatures, $"{fx.Model} loaded from a timm-layout file: features differ by {df:G4} > {fx.ToleranceFeatures:G4}");
            return;
        }
        Assert.True(model.Weights!.Report.HeadLoaded, $"{fx.Model}: the classifier was not loaded from {file}");
        Assert.Equal(1000, model.Labels.Count);                // a 1000-class file is taken as ImageNet-1k
        model.Module.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.Module.forward(ReferenceFill.Input(fx.InputShape, fx.InputSeed));
        double d = ParityTests.MaxAbsDiff(logits, fx.Logits);
        output.WriteLine($"{fx.Model}: logits max |diff| {d:G3} (tolerance {fx.ToleranceLogits:G3})");
        Assert.True(d <= fx.ToleranceLogits, $"{fx.Model} loaded from a timm-layout file: logits differ by {d:G4} > {fx.ToleranceLogits:G4}");
    }
}

/// <summary>`transfer predict --model NAME --weights FILE.safetensors IMAGE --json` on a timm-layout file.</summary>
[Collection("Console")]
[Trait("Category", "Weights")]
public sealed class TimmCheckpointCliTests : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>mobilenet_v1 by its Keras alias; vit_base_patch16_224 is issue 11's case.</summary>
    [SkippableTheory]
    [InlineData("mobilenet_v1", "MobileNet")]
    [InlineData("vit_base_patch16_224", "vit_base_patch16_224")]
    public void Predict_takes_a_timm_layout_safetensors_file(string fixtureModel, string modelArgument)
    {
        var fixture = Path.Combine(Paths.ArchitectureFixtures, fixtureModel + ".json");
        Paths.RequireFixture(fixture, $"{fixtureModel} fixture");
        var fx = ArchitectureFixture.Load(fixture);
        var file = Path.Combine(_temp, fixtureModel + ".safetensors");
        TimmCheckpointTests.WriteTimmCheckpoint(fx, file);
        var result = CliRunner.RunJson("predict", "--model", modelArgument, "--weights", file, "--top", "3", Path.Combine(Paths.RepoRoot, "samples", "cat.jpg"));
        var top = result.GetProperty("predictions")[0].GetProperty("top");
        Assert.Equal(3, top.GetArrayLength());
        Assert.False(string.IsNullOrEmpty(top[0].GetProperty("label").GetString()));
        Assert.Contains(fixtureModel, result.GetProperty("model").GetString());
    }
}
