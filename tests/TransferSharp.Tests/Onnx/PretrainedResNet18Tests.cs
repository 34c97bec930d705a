using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>The real ImageNet-trained CNTK ResNet-18 of Microsoft.ML.DnnImageFeaturizer.ResNet18,
/// imported into our graph, against ONNX Runtime running the original files, on real photos.</summary>
[Trait("Category", "Onnx")]
public class PretrainedResNet18Tests(ITestOutputHelper output)
{
    [Fact]
    public void Pooled_features_equal_onnx_runtime_on_real_photos()
    {
        using var scope = NewDisposeScope();
        var names = TestImages.PhotoNames;
        Assert.True(names.Length >= 8, "tests/data/photos should hold the 8 photos");
        var x = TestImages.Batch(names);

        using var model = OnnxZoo.CreateResNet18Cntk();
        Tensor ours;
        using (no_grad()) ours = model.PooledFeatures(x);
        Assert.Equal(new long[] { names.Length, 512 }, ours.shape);

        using var pre = new OnnxRuntimeEngine(OnnxZoo.ResNetPreprocessOnnxPath);
        using var net = new OnnxRuntimeEngine(OnnxZoo.ResNet18OnnxPath);
        var preprocessed = pre.Forward(x);
        var reference = net.PooledFeatures(preprocessed);

        for (int i = 0; i < names.Length; i++)
        {
            double diff = (ours[i] - reference[i]).abs().max().item<float>();
            double scale = reference[i].abs().max().item<float>();
            output.WriteLine($"{names[i]}: max |ours - ORT| = {diff:G3}, max |ORT| = {scale:G4}, relative {diff / scale:G3}");
            Assert.True(diff <= 1e-4 * scale, $"{names[i]}: features differ by {diff:G3}, more than 1e-4 × {scale:G4}");
        }
    }

    [Fact]
    public void The_two_motorcycle_photos_are_nearest_each_other()
    {
        using var scope = NewDisposeScope();
        var names = TestImages.PhotoNames;
        var x = TestImages.Batch(names);
        using var model = OnnxZoo.CreateResNet18Cntk();
        Tensor f;
        using (no_grad()) f = model.PooledFeatures(x);
        var unit = nn.functional.normalize(f, dim: 1);
        var cos = unit.matmul(unit.t());
        int left = Array.IndexOf(names, "motorcycle_left"), right = Array.IndexOf(names, "motorcycle_right");
        Assert.True(left >= 0 && right >= 0);
        double pair = cos[left, right].item<float>();
        for (int i = 0; i < names.Length; i++)
        {
            if (i == left || i == right) continue;
            double l = cos[left, i].item<float>(), r = cos[right, i].item<float>();
            output.WriteLine($"cos(motorcycle_left, {names[i]}) = {l:F3}, cos(motorcycle_right, {names[i]}) = {r:F3}");
            Assert.True(pair > l && pair > r, $"cos(left, right) = {pair:F3} is not above cos with {names[i]} ({l:F3}, {r:F3})");
        }
        output.WriteLine($"cos(motorcycle_left, motorcycle_right) = {pair:F3}");
    }

    [Fact]
    public void Zoo_entry_is_registered_and_imports_quickly()
    {
        Assert.True(ModelZoo.Contains("resnet18_cntk"));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var imported = OnnxImporter.Import(OnnxZoo.ResNet18OnnxPath);
        output.WriteLine($"import: {sw.Elapsed.TotalSeconds:F2} s, {imported.Graph.Nodes.Count} nodes, groups {string.Join(", ", imported.Graph.Groups.Select(g => g.Name))}");
        Assert.Equal(8, imported.Opset);
        Assert.Equal("CNTK 2.6", imported.Producer);
        // CNTK pads its stem asymmetrically: 3 before, 2 after.
        var stem = imported.Graph.Nodes.First(n => n.Op is Conv2dOp);
        Assert.Equal(new PadSpec(TransferSharp.Vision.Graph.PadKind.Explicit, 3, 3, 2, 2), ((Conv2dOp)stem.Op).Padding);
        Assert.Equal(["stage0", "stage1", "stage2", "stage3", "stage4", "head"], imported.Graph.Groups.Select(g => g.Name));
        Assert.Equal(512, imported.Graph.NumFeatures);
    }

    [Fact]
    public void Pretrained_body_takes_a_new_head_through_the_weight_registry()
    {
        using var scope = NewDisposeScope();
        var (model, weights) = global::TransferSharp.Weights.PretrainedWeights.Create("resnet18_cntk", "imagenet", new ModelOptions { NumClasses = 3 });
        using var _m = model;
        Assert.Equal("resnet18_cntk.cntk_in1k", weights.Tag!.Name);
        Assert.Equal(["fc.weight", "fc.bias"], weights.Report.Reinitialised.Order().Reverse());
        Assert.False(weights.Report.HeadLoaded);
        Assert.Equal(3, model.NumClasses);
        using var reference = OnnxZoo.CreateResNet18Cntk();
        model.eval();
        var x = TestImages.Batch(["coffee"]);
        using var _ = no_grad();
        Assert.True(model.PooledFeatures(x).allclose(reference.forward(x), 1e-5, 1e-5));
    }
}
