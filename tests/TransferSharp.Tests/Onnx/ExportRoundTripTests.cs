using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Zoo;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>
/// Every zoo architecture, filled by ../shared/reference/FILL.md's scheme (in the fixture's state-dict
/// order), exported to ONNX: ONNX Runtime on the file reproduces our eval logits and pooled features
/// within the fixture's tolerance. Architectures without a fixture use the same fill rules in our own
/// state-dict order and a tolerance of 1e-4 × the largest magnitude.
/// </summary>
[Trait("Category", "Onnx")]
public class ExportRoundTripTests(ITestOutputHelper output)
{
    public static TheoryData<string> Architectures()
    {
        var data = new TheoryData<string>();
        foreach (var e in ModelZoo.Entries) data.Add(e.Name);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Architectures))]
    public void Onnx_runtime_reproduces_our_outputs(string name)
    {
        var fixturePath = Path.Combine(Paths.ArchitectureFixtures, name + ".json");
        var fx = File.Exists(fixturePath) ? ArchitectureFixture.Load(fixturePath) : null;
        var entry = ModelZoo.Get(name);
        long[] inputShape = fx?.InputShape ?? [2, 3, entry.NativeSize, entry.NativeSize];
        var options = new ModelOptions { NumClasses = fx?.Logits[0].Length ?? 10, ImageSize = (int)inputShape[2], InChannels = (int)inputShape[1] };

        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, options);
        var state = model.state_dict();
        if (fx is not null) ReferenceFill.FillStateDict(state, fx.StateDict, fx.WeightSeed);
        else ReferenceFill.FillStateDict(state, state.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString().ToLowerInvariant())), 4242);
        model.eval();
        var x = ReferenceFill.Input(inputShape, fx?.InputSeed ?? 4242);
        Tensor logits, features;
        using (no_grad())
        {
            logits = model.forward(x);
            features = model.PooledFeatures(x);
        }

        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, name + ".onnx");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            OnnxExporter.Export(model, file);
            double exportSeconds = sw.Elapsed.TotalSeconds;
            using var engine = new OnnxRuntimeEngine(file);
            var ortLogits = engine.Forward(x);
            var ortFeatures = engine.PooledFeatures(x);
            Assert.Equal(logits.shape, ortLogits.shape);
            Assert.Equal(features.shape, ortFeatures.shape);
            double dl = (ortLogits - logits).abs().max().item<float>();
            double df = (ortFeatures - features).abs().max().item<float>();
            double tolL = fx?.ToleranceLogits ?? 1e-4 * logits.abs().max().item<float>();
            double tolF = fx?.ToleranceFeatures ?? 1e-4 * features.abs().max().item<float>();
            output.WriteLine($"{name}: export {exportSeconds:F1} s, {new FileInfo(file).Length / 1e6:F1} MB; |Δlogits| {dl:G3} (tol {tolL:G3}), |Δfeatures| {df:G3} (tol {tolF:G3}); total {sw.Elapsed.TotalSeconds:F1} s");
            Assert.True(dl <= tolL, $"{name}: ONNX Runtime logits differ by {dl:G4} > {tolL:G4}");
            Assert.True(df <= tolF, $"{name}: ONNX Runtime features differ by {df:G4} > {tolF:G4}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
