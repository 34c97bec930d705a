using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using TransferSharp.Vision.Zoo;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class ArchitectureTests
{
    public static TheoryData<string> ZooNames() => new(ModelZoo.Entries.Select(e => e.Name));

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void EveryZooBodyTakesAHead(string name)
    {
        var zoo = ModelZoo.Get(name).Build(new ModelOptions { NumClasses = 0 });
        foreach (var head in new[] { new HeadSpec(), new HeadSpec { Kind = HeadKind.Mlp, Hidden = 32, Dropout = 0.2 } })
        {
            var graph = new ModelArchitecture { Zoo = name, NumClasses = 7, Head = head }.BuildGraph();
            Assert.Equal(zoo.NumFeatures, graph.NumFeatures);
            Assert.Equal(7, graph.NumClasses);
            Assert.Equal(ModelGraph.HeadGroup, graph.Groups[^1].Name);
            Assert.Equal(graph.ClassifierNode, graph.Output);
            Assert.Equal([1, 7], graph.Shapes[graph.Output]);
            Assert.True(graph.Groups.Count >= 2, $"{name}: body groups to unfreeze");
            Assert.Contains(graph.ClassifierNode!, graph.HeadNodes);
            Assert.Equal(graph.PreLogitsSize, graph.HeadNodes.Select(n => graph.Node(n).Op).OfType<LinearOp>().First().InFeatures);
        }
        var headless = new ModelArchitecture { Zoo = name }.BuildGraph();
        Assert.Equal(2, headless.Shapes[headless.Output].Length);
        Assert.Null(headless.ClassifierNode);
    }

    /// <summary>A model trained for 7 classes has the reference model's state dict with 7 classes: every name, every
    /// shape (the classifiers' first dimension 7), so it loads strictly into, say, torchvision's
    /// <c>resnet50(num_classes=7)</c>.</summary>
    [SkippableTheory]
    [MemberData(nameof(ArchitectureFixture.All), MemberType = typeof(ArchitectureFixture))]
    public void TrainedModelHasTheReferenceStateDictWithItsClassCount(string fixtureFile)
    {
        var fx = ArchitectureFixture.Load(Path.Combine(Paths.ArchitectureFixtures, fixtureFile));
        Skip.IfNot(ModelZoo.Contains(fx.Model), $"{fx.Model} is not in the zoo yet");
        int referenceClasses = fx.NumClasses;
        using var model = new ModelArchitecture { Zoo = fx.Model, NumClasses = 7, ImageSize = (int)fx.InputShape[2] }.Build();
        var ours = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var expected = fx.StateDict.ToDictionary(e => e.Name, e => referenceClasses > 0 && e.Shape.Length > 0 && e.Shape[0] == referenceClasses ? [7, .. e.Shape[1..]] : e.Shape);
        if (referenceClasses == 0)
        {
            // A reference without a classifier (timm's DINOv2) gets timm's own with num_classes=7: head.weight, head.bias.
            Assert.Equal("head", model.Graph.ClassifierNode);
            expected["head.weight"] = [7, fx.Features[0].Length];
            expected["head.bias"] = [7];
        }
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(ours[name]), $"{fx.Model}: {name} is [{string.Join(",", ours[name])}], the reference with 7 classes has [{string.Join(",", shape)}]");
        if (referenceClasses > 0) Assert.Contains(fx.StateDict, e => e.Shape.Length > 0 && e.Shape[0] == referenceClasses);
    }
}
