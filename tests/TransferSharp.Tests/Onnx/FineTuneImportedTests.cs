using TorchSharp;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>Fine-tuning an imported ONNX graph: cut at a named node, a new head, freezing by layer
/// groups derived from the graph, gradients into the imported weights, the BatchNorm policy, and the
/// fine-tuned model exported back to ONNX and run by ONNX Runtime on real photos.</summary>
[Trait("Category", "Onnx")]
public class FineTuneImportedTests(ITestOutputHelper output)
{
    private static (GraphModule Module, OnnxModel Imported) CutWithHead(out string cutNode)
    {
        var imported = OnnxImporter.Import(OnnxZoo.ResNet18OnnxPath);
        // The last node of stage 3 (14×14 resolution), named as the ONNX file names its output tensor.
        var stage3 = imported.Graph.Groups.Single(g => g.Name == "stage3").Prefixes[^1];
        var onnxName = imported.NodeNames.First(kv => kv.Value == stage3 && imported.Graph.HasNode(kv.Value) && kv.Key != stage3).Key;
        cutNode = imported.ResolveNode(onnxName);
        Assert.Equal(stage3, cutNode);
        var graph = imported.Graph.CutAt(cutNode).WithClassifier(3);
        var module = new GraphModule(graph);
        imported.LoadInto(module, LoadPolicy.Lenient);
        return (module, imported);
    }

    private static bool Same(Tensor a, Tensor b) => a.allclose(b, 0, 0);

    private static Dictionary<string, Tensor> Snapshot(GraphModule m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Fact]
    public void Sgd_changes_exactly_the_unfrozen_parameters_and_bn_follows_the_policy()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        var (module, _) = CutWithHead(out var cut);
        using var _m = module;
        Assert.Equal(cut, module.Graph.FeatureNode);
        Assert.Equal("fc", module.Graph.ClassifierNode);
        Assert.Equal(["stage0", "stage1", "stage2", "stage3", "head"], module.GroupNames);

        module.Freeze();
        module.Unfreeze("stage3", "head");
        module.BatchNormMode = BatchNormMode.FollowFreeze;
        module.train();
        var before = Snapshot(module);
        var trainable = module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        Assert.Contains("fc.weight", trainable);
        Assert.True(trainable.Count > 2, "stage3's imported parameters should be trainable");

        var optimizer = optim.SGD(module.parameters().Where(p => p.requires_grad), learningRate: 0.01);
        var x = rand(4, 3, 112, 112) * 255;
        var y = tensor(new long[] { 0, 1, 2, 0 });
        for (int step = 0; step < 3; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(module.forward(x), y);
            loss.backward();
            optimizer.step();
        }
        foreach (var (name, p) in module.named_parameters())
        {
            bool changed = !Same(p.detach(), before[name]);
            Assert.True(changed == trainable.Contains(name), $"{name}: changed={changed}, trainable={trainable.Contains(name)}");
            if (!trainable.Contains(name)) Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0, $"{name} is frozen but has a gradient");
        }
        var stage3 = module.Graph.Groups.Single(g => g.Name == "stage3");
        var bnStats = module.named_buffers().Where(b => b.name.EndsWith("running_mean", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(bnStats);
        foreach (var (name, buffer) in bnStats)
        {
            bool changed = !Same(buffer, before[name]);
            Assert.True(changed == stage3.Contains(name), $"{name}: running mean changed={changed}, in unfrozen stage3={stage3.Contains(name)}");
        }

        // BatchNormMode.Eval: unfrozen BN layers keep their statistics too.
        module.BatchNormMode = BatchNormMode.Eval;
        module.train();
        var snapshot = Snapshot(module);
        using (var s = NewDisposeScope())
        {
            optimizer.zero_grad();
            nn.functional.cross_entropy(module.forward(x), y).backward();
            optimizer.step();
        }
        foreach (var (name, buffer) in module.named_buffers().Where(b => b.name.EndsWith("running_var", StringComparison.Ordinal)))
            Assert.True(Same(buffer, snapshot[name]), $"{name} changed although BatchNormMode is Eval");
        Assert.False(Same(module.get_parameter("fc.weight")!, snapshot["fc.weight"]));
    }

    [Fact]
    public void Ranges_of_nodes_define_layer_groups()
    {
        var imported = OnnxImporter.Import(OnnxZoo.ResNet18OnnxPath);
        var g = GraphSurgery.WithGroupsByIndex(imported.Graph, ("low", 0, 9), ("high", 10, imported.Graph.Nodes.Count - 1));
        using var module = new GraphModule(g);
        module.Freeze();
        module.Unfreeze("high");
        var low = g.Nodes.Take(10).Select(n => n.Name).ToHashSet();
        foreach (var (name, p) in module.named_parameters())
            Assert.Equal(!low.Contains(name[..name.LastIndexOf('.')]), p.requires_grad);
        Assert.Throws<ArgumentOutOfRangeException>(() => GraphSurgery.WithGroupsByIndex(imported.Graph, ("bad", 5, 1000)));
    }

    [Fact]
    public void Fine_tuned_import_exports_and_predicts_new_images_in_onnx_runtime()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(11);
        // Train a 2-class head (motorcycle or not) on three photos, body frozen, then predict the rest.
        var imported = OnnxZoo.ResNet18Cntk;
        var graph = imported.Graph.WithClassifier(2);
        using var module = new GraphModule(graph);
        imported.LoadInto(module, LoadPolicy.Lenient);
        module.Freeze();
        module.Unfreeze("head");
        var train = TestImages.Batch(["motorcycle_left", "chelsea", "coffee"]);
        var labels = tensor(new long[] { 1, 0, 0 });
        var optimizer = optim.Adam(module.parameters().Where(p => p.requires_grad), lr: 0.01);
        module.train();
        // The body is frozen: its feature maps are computed once, the head trains on them.
        Tensor featureMaps;
        using (no_grad()) featureMaps = module.ForwardFeatures(train);
        for (int step = 0; step < 30; step++)
        {
            using var s = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(module.ForwardHead(featureMaps), labels).backward();
            optimizer.step();
        }
        module.eval();
        var names = new[] { "motorcycle_right", "astronaut", "rocket", "flower", "china" };
        var test = TestImages.Batch(names);
        Tensor ours;
        using (no_grad()) ours = module.forward(test);

        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, "finetuned.onnx");
            OnnxExporter.Export(module, file, new OnnxExportOptions { Preprocessing = OnnxZoo.ResNet18CntkPreprocessing });
            using var engine = new OnnxRuntimeEngine(file);
            var ort = engine.Forward(test);
            double diff = (ort - ours).abs().max().item<float>(), scale = ours.abs().max().item<float>();
            output.WriteLine($"fine-tuned logits: max |ORT - ours| = {diff:G3}, max |ours| = {scale:G3}");
            Assert.True(diff <= 1e-4 * Math.Max(scale, 1), $"ONNX Runtime differs by {diff:G3}");
            Assert.Equal(OnnxZoo.ResNet18CntkPreprocessing, engine.Preprocessing! with { Mean = OnnxZoo.ResNet18CntkPreprocessing.Mean, Std = OnnxZoo.ResNet18CntkPreprocessing.Std });
            Assert.Equal(OnnxZoo.ResNet18CntkPreprocessing.Mean, engine.Preprocessing!.Mean);
            var predicted = ort.argmax(1).data<long>().ToArray();
            output.WriteLine(string.Join(", ", names.Zip(predicted, (n, p) => $"{n} → {(p == 1 ? "motorcycle" : "other")}")));
            Assert.Equal(1, predicted[0]);
            Assert.Equal(ours.argmax(1).data<long>().ToArray(), predicted);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
