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
            Assert.Equal(ModelArchitecture.HeadGroup, graph.Groups[^1].Name);
            Assert.Equal(graph.ClassifierNode, graph.Output);
            Assert.Equal([1, 7], graph.Shapes[graph.Output]);
            Assert.True(graph.Groups.Count >= 2, $"{name}: body groups to unfreeze");
            Assert.Empty(graph.AuxOutputs);
        }
        var headless = new ModelArchitecture { Zoo = name }.BuildGraph();
        Assert.Equal(ModelArchitecture.PoolNode, headless.Output);
        Assert.Null(headless.ClassifierNode);
    }
}
