using TorchSharp;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>
/// Every zoo architecture, filled by ../shared/reference/FILL.md's scheme (in the fixture's state-dict
/// order), exported to ONNX: ONNX Runtime on the file reproduces our eval logits and pooled features
/// within the fixture's tolerance. Architectures without a fixture use the same fill rules in our own
/// state-dict order, batch 1, and FILL.md's tolerance rule with the float32 error measured against our
/// own float64 run.
/// </summary>
[Trait("Category", "Onnx")]
public class ExportRoundTripTests(ITestOutputHelper output)
{
    public static TheoryData<string> Architectures()
    {
        var data = new TheoryData<string>();
        foreach (var e in ModelZoo.Entries)
        {
            // The families of issue 11 run their smallest variant: the others repeat its code paths at many times the cost.
            if ((ImportedBack.Contains(e.Name) || !NewFamilies.Contains(e.Family)) && !SameCodePathAsASmallerVariant.Contains(e.Name) && !LargerVariants.Contains(e.Name)) data.Add(e.Name);
        }
        return data;
    }

    private static readonly HashSet<string> NewFamilies = ["EfficientNet", "EfficientNetV2", "EfficientNet (TF)", "EfficientNetV2 (TF)", "MobileNetV3"];

    /// <summary>Also imported back from their ONNX file as a graph that reproduces the logits and trains.</summary>
    private static readonly HashSet<string> ImportedBack = ["efficientnet_b0", "tf_efficientnet_b0", "tf_efficientnetv2_b0", "mobilenet_v3_small"];

    /// <summary>Larger variants of a family whose smallest variant is in the theory and whose graphs use no op or
    /// block the smallest lacks (only widths and depths differ): left out to keep the suite's time small.</summary>
    private static readonly HashSet<string> SameCodePathAsASmallerVariant = new(StringComparer.Ordinal)
    {
        "convnext_small", "convnext_base", "convnext_large",
    };

    /// <summary>Variants whose ops a smaller one of the same family already exports (the suite stays lean: ViT-S/16
    /// covers the transformers, DINOv2's LayerScale has its own OpCatalog case).</summary>
    private static readonly HashSet<string> LargerVariants =
    [
        "vit_base_patch16_224", "vit_large_patch16_224", "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2",
        // The register tokens' export runs in Register_tokens_export_and_import_back_as_parameters, at 28 px.
        "vit_small_patch14_reg4_dinov2", "vit_base_patch14_reg4_dinov2", "vit_large_patch14_reg4_dinov2",
    ];

    [SkippableTheory]
    [MemberData(nameof(Architectures))]
    public void Onnx_runtime_reproduces_our_outputs(string name)
    {
        var fixturePath = Path.Combine(Paths.ArchitectureFixtures, name + ".json");
        var fx = File.Exists(fixturePath) ? ArchitectureFixture.Load(fixturePath) : null;
        var entry = ModelZoo.Get(name);
        long[] inputShape = fx?.InputShape ?? [1, 3, entry.NativeSize, entry.NativeSize];
        var options = new ModelOptions { NumClasses = fx?.NumClasses ?? 10, ImageSize = (int)inputShape[2], InChannels = (int)inputShape[1] };

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
            double tolL, tolF;
            if (fx is not null) (tolL, tolF) = (fx.ToleranceLogits, fx.ToleranceFeatures);
            else (tolL, tolF) = OwnTolerance(model, x, logits, features);
            output.WriteLine($"{name}: export {exportSeconds:F1} s, {new FileInfo(file).Length / 1e6:F1} MB; |Δlogits| {dl:G3} (tol {tolL:G3}), |Δfeatures| {df:G3} (tol {tolF:G3}); total {sw.Elapsed.TotalSeconds:F1} s");
            Assert.True(dl <= tolL, $"{name}: ONNX Runtime logits differ by {dl:G4} > {tolL:G4}");
            Assert.True(df <= tolF, $"{name}: ONNX Runtime features differ by {df:G4} > {tolF:G4}");
            if (ImportedBack.Contains(name)) ImportsBackAsTrainableGraph(file, x, logits, tolL);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>The exported file imports as a graph whose eval logits are ours, and whose imported weights receive
    /// gradients in training mode.</summary>
    private void ImportsBackAsTrainableGraph(string file, Tensor x, Tensor logits, double tolerance)
    {
        using var scope = NewDisposeScope();
        var imported = OnnxImporter.Import(file);
        using var module = new GraphModule(imported.Graph);
        imported.LoadInto(module, LoadPolicy.Strict);
        module.eval();
        double d;
        using (no_grad()) d = (module.forward(x) - logits).abs().max().item<float>();
        output.WriteLine($"imported back: {imported.Graph.Nodes.Count} nodes, |Δlogits| {d:G3} (tol {tolerance:G3})");
        Assert.True(d <= tolerance, $"{file}: the imported graph's logits differ by {d:G4} > {tolerance:G4}");

        module.train();
        module.forward(x).square().mean().backward();
        var parameters = module.named_parameters().ToList();
        int withGradient = parameters.Count(p => p.parameter.grad is { } g && g.abs().sum().item<float>() > 0);
        Assert.True(withGradient > parameters.Count / 2, $"{file}: only {withGradient} of {parameters.Count} imported parameters got a gradient");
    }

    /// <summary>A family's export imports back as a trainable graph: every trained tensor of ours is a trainable
    /// parameter of the imported model (LayerScale's gamma included, not folded into a constant), the imported model
    /// computes what ours does, and a backward pass reaches all of its parameters.</summary>
    [Theory]
    [InlineData("convnext_tiny")]
    public void Export_imports_back_as_a_trainable_graph(string name)
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, new ModelOptions { NumClasses = 5, ImageSize = 64 });
        var state = model.state_dict();
        ReferenceFill.FillStateDict(state, state.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString().ToLowerInvariant())), 31);
        model.eval();
        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, name + ".onnx");
            OnnxExporter.Export(model, file);
            using var back = OnnxImporter.Import(file).CreateModule();
            back.eval();
            static long Trainable(GraphModule m) => m.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            Assert.Equal(Trainable(model), Trainable(back));
            Assert.Contains(back.named_parameters(), p => p.name.EndsWith(".gamma", StringComparison.Ordinal));
            var x = ReferenceFill.Input([2, 3, 64, 64], 32);
            using (no_grad())
            {
                var ours = model.forward(x);
                double d = (back.forward(x) - ours).abs().max().item<float>();
                output.WriteLine($"{name}: re-imported logits differ by {d:G3} (max |logit| {ours.abs().max().item<float>():G3})");
                Assert.True(d <= 1e-4 * Math.Max(1, ours.abs().max().item<float>()), $"{name}: the re-imported model differs by {d:G4}");
            }
            back.train();
            back.forward(x).sum().backward();
            Assert.All(back.named_parameters(), p => Assert.True(p.parameter.grad is not null, $"{name}: {p.name} got no gradient"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A vision transformer exported to ONNX imports back as a trainable graph that computes the reference's
    /// logits: attention, class token, position embedding and token pooling read back from plain ONNX operators.</summary>
    [SkippableFact]
    public void Vit_small_imports_back_as_a_trainable_graph()
    {
        var fixturePath = Path.Combine(Paths.ArchitectureFixtures, "vit_small_patch16_224.json");
        Paths.RequireFixture(fixturePath, "vit_small_patch16_224 fixture");
        var fx = ArchitectureFixture.Load(fixturePath);
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(fx.Model, new ModelOptions { NumClasses = fx.NumClasses });
        ReferenceFill.FillStateDict(model.state_dict(), fx.StateDict, fx.WeightSeed);
        model.eval();
        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, "vit.onnx");
            OnnxExporter.Export(model, file);
            using var back = OnnxImporter.Import(file).CreateModule();
            back.eval();
            var x = ReferenceFill.Input(fx.InputShape, fx.InputSeed);
            double d;
            using (no_grad()) d = TransferSharp.Tests.Vision.ParityTests.MaxAbsDiff(back.forward(x), fx.Logits);
            output.WriteLine($"vit_small_patch16_224 imported back: logits max |diff| {d:G3} (tolerance {fx.ToleranceLogits:G3}), {back.Graph.Nodes.Count} nodes");
            Assert.True(d <= fx.ToleranceLogits, $"the re-imported ViT's logits differ by {d:G4} > {fx.ToleranceLogits:G4}");
            // The class token and the position embedding are parameters again, as in timm, not frozen constants.
            Assert.IsType<PrefixTokensOp>(back.Graph.Node("cls_token").Op);
            Assert.IsType<PositionEmbeddingOp>(back.Graph.Node("pos_embed").Op);
            static long Trainable(GraphModule m) => m.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            Assert.Equal(Trainable(model), Trainable(back));
            // Trainable: the loss reaches the first block's attention weights through every imported op.
            back.train();
            using var loss = back.forward(x.narrow(0, 0, 1)).square().mean();
            loss.backward();
            var weights = back.named_parameters().Where(p => p.parameter.dim() == 2).ToList();
            Assert.True(weights.Count >= 48, $"{weights.Count} matrices imported as parameters");
            Assert.All(weights, p => Assert.True(p.parameter.grad is { } g && g.abs().sum().item<float>() > 0, $"{p.name} got no gradient"));
            Assert.All(back.named_parameters().Where(p => p.name is "cls_token" or "pos_embed"),
                p => Assert.True(p.parameter.grad is { } g && g.abs().sum().item<float>() > 0, $"{p.name} got no gradient"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>DINOv2 with register tokens at 28 px (a 2×2 patch grid): ONNX Runtime computes what we do, and the file
    /// imports back with its class tokens, register tokens and position embedding (patch rows only: timm's
    /// no_embed_class) as trainable parameters of the right ops, computing the same features.</summary>
    [Fact]
    public void Register_tokens_export_and_import_back_as_parameters()
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create("vit_small_patch14_reg4_dinov2", new ModelOptions { NumClasses = 0, ImageSize = 28 });
        var state = model.state_dict();
        ReferenceFill.FillStateDict(state, state.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString().ToLowerInvariant())), 41);
        model.eval();
        var x = ReferenceFill.Input([2, 3, 28, 28], 42);
        Tensor ours;
        using (no_grad()) ours = model.forward(x);
        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, "reg4.onnx");
            OnnxExporter.Export(model, file);
            double tolerance = 1e-4 * Math.Max(1, ours.abs().max().item<float>());
            using (var engine = new OnnxRuntimeEngine(file))
            {
                double dOrt = (engine.Forward(x) - ours).abs().max().item<float>();
                output.WriteLine($"reg4 at 28 px: ONNX Runtime differs by {dOrt:G3} (tolerance {tolerance:G3})");
                Assert.True(dOrt <= tolerance, $"ONNX Runtime's features differ by {dOrt:G4}");
            }
            using var back = OnnxImporter.Import(file).CreateModule();
            back.eval();
            Assert.Equal(4, ((PrefixTokensOp)back.Graph.Node("reg_token").Op).Count);
            Assert.Equal(1, ((PrefixTokensOp)back.Graph.Node("cls_token").Op).Count);
            var embedding = (PositionEmbeddingOp)back.Graph.Node("pos_embed").Op;
            Assert.Equal((0, 2, 2), (embedding.PrefixTokens, embedding.GridH, embedding.GridW));
            double d;
            using (no_grad()) d = (back.forward(x) - ours).abs().max().item<float>();
            output.WriteLine($"reg4 imported back: differs by {d:G3}");
            Assert.True(d <= tolerance, $"the re-imported model differs by {d:G4}");
            back.train();
            back.forward(x).square().mean().backward();
            foreach (var name in new[] { "cls_token", "reg_token", "pos_embed" })
            {
                var p = back.named_parameters().Single(p => p.name == name).parameter;
                Assert.True(p.requires_grad && p.grad is { } g && g.abs().sum().item<float>() > 0, $"{name} is not trained");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>FILL.md's rule, max(50 × float32 error, 1e-5 × max |value|), with the float32 error taken
    /// from our own float64 run (for architectures that have no fixture).</summary>
    private static (double Logits, double Features) OwnTolerance(GraphModule model, Tensor x, Tensor logits, Tensor features)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.to(float64);
        try
        {
            var x64 = x.to(float64);
            double errL = (model.forward(x64) - logits.to(float64)).abs().max().item<double>();
            double errF = (model.PooledFeatures(x64) - features.to(float64)).abs().max().item<double>();
            return (Math.Max(50 * errL, 1e-5 * logits.abs().max().item<float>()), Math.Max(50 * errF, 1e-5 * features.abs().max().item<float>()));
        }
        finally
        {
            model.to(float32);
        }
    }
}
