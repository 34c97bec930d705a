using TorchSharp;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Zoo;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>
/// Every architecture against its reference implementation (../shared/reference/FILL.md): the same
/// state-dict names and shapes, and the same logits and pooled features on the deterministic fill.
/// </summary>
[Trait("Category", "Parity")]
public class ParityTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [MemberData(nameof(ArchitectureFixture.All), MemberType = typeof(ArchitectureFixture))]
    public void Matches_reference(string fixtureFile) => Check(Path.Combine(Paths.ArchitectureFixtures, fixtureFile));

    /// <summary>A variant that adds a code path and has no shared fixture, against the repository's own fixture made by
    /// the same generator (tests/data/architectures/README.md): DINOv2 with register tokens.</summary>
    [SkippableFact]
    public void Register_tokens_match_timm() => Check(Path.Combine(Paths.TestData, "architectures", "vit_small_patch14_reg4_dinov2.json"));

    private void Check(string fixturePath)
    {
        var fx = ArchitectureFixture.Load(fixturePath);
        Skip.IfNot(ModelZoo.Contains(fx.Model), $"{fx.Model} is not in the zoo yet");

        using var scope = NewDisposeScope();
        var options = new ModelOptions { NumClasses = fx.NumClasses, ImageSize = (int)fx.InputShape[2], InChannels = (int)fx.InputShape[1] };
        using var model = ModelZoo.Create(fx.Model, options);

        var ours = model.state_dict();
        var missing = fx.StateDict.Where(e => !ours.ContainsKey(e.Name)).Select(e => e.Name).ToList();
        var expectedNames = fx.StateDict.Select(e => e.Name).ToHashSet();
        var extra = ours.Keys.Where(k => !expectedNames.Contains(k)).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"{fx.Model}: state dict differs from the reference: missing [{string.Join(", ", missing.Take(10))}]{(missing.Count > 10 ? $" (+{missing.Count - 10})" : "")}, unexpected [{string.Join(", ", extra.Take(10))}]{(extra.Count > 10 ? $" (+{extra.Count - 10})" : "")}");
        var misShaped = fx.StateDict.Where(e => !ours[e.Name].shape.SequenceEqual(e.Shape))
            .Select(e => $"{e.Name}: ours [{string.Join(",", ours[e.Name].shape)}], reference [{string.Join(",", e.Shape)}]").ToList();
        Assert.True(misShaped.Count == 0, $"{fx.Model}: mis-shaped tensors: {string.Join("; ", misShaped.Take(10))}");
        var ourOrder = ours.Keys.ToList();
        int firstOutOfOrder = Enumerable.Range(0, fx.StateDict.Length).FirstOrDefault(k => ourOrder[k] != fx.StateDict[k].Name, -1);
        Assert.True(firstOutOfOrder < 0, $"{fx.Model}: state-dict order differs from the reference at entry {firstOutOfOrder}: ours '{(firstOutOfOrder >= 0 ? ourOrder[firstOutOfOrder] : "")}', reference '{(firstOutOfOrder >= 0 ? fx.StateDict[firstOutOfOrder].Name : "")}'");

        ReferenceFill.FillStateDict(ours, fx.StateDict, fx.WeightSeed);
        model.eval();
        using var _ = no_grad();
        var x = ReferenceFill.Input(fx.InputShape, fx.InputSeed);
        var logits = model.forward(x);
        var features = model.PooledFeatures(x);

        double dl = MaxAbsDiff(logits, fx.Logits);
        double df = MaxAbsDiff(features, fx.Features);
        output.WriteLine($"{fx.Model}: logits max |diff| {dl:G3} (tolerance {fx.ToleranceLogits:G3}), features {df:G3} (tolerance {fx.ToleranceFeatures:G3})");
        Assert.True(dl <= fx.ToleranceLogits, $"{fx.Model}: logits differ by {dl:G4} > tolerance {fx.ToleranceLogits:G4} (features: {df:G4} vs {fx.ToleranceFeatures:G4})");
        Assert.True(df <= fx.ToleranceFeatures, $"{fx.Model}: pooled features differ by {df:G4} > tolerance {fx.ToleranceFeatures:G4} (logits: {dl:G4} vs {fx.ToleranceLogits:G4})");
    }

    internal static double MaxAbsDiff(Tensor actual, double[][] expected)
    {
        Assert.Equal(expected.Length, (int)actual.shape[0]);
        Assert.Equal(expected[0].Length, (int)actual.shape[1]);
        var a = actual.to(float64).contiguous().data<double>().ToArray();
        double max = 0;
        int cols = expected[0].Length;
        for (int r = 0; r < expected.Length; r++)
            for (int c = 0; c < cols; c++)
                max = Math.Max(max, Math.Abs(a[r * cols + c] - expected[r][c]));
        return max;
    }
}
