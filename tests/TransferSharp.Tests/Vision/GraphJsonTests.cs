using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;

namespace TransferSharp.Tests.Vision;

/// <summary>Graphs as JSON (how a model file stores a body no zoo builder makes): every zoo graph round-trips,
/// and hostile descriptions are refused before anything is allocated.</summary>
[Trait("Category", "Graph")]
public sealed class GraphJsonTests
{
    public static TheoryData<string> ZooNames()
    {
        var data = new TheoryData<string>();
        foreach (var e in ModelZoo.Entries) data.Add(e.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void Every_zoo_graph_round_trips(string name)
    {
        var graph = ModelZoo.Get(name).Build(new ModelOptions());
        var json = GraphJson.Serialize(graph);
        var back = GraphJson.Deserialize(json);
        Assert.Equal(json, GraphJson.Serialize(back));
        Assert.Equal(graph.Nodes.Count, back.Nodes.Count);
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            Assert.Equal(graph.Nodes[i].Name, back.Nodes[i].Name);
            Assert.Equal(graph.Nodes[i].Op.GetType(), back.Nodes[i].Op.GetType());
            Assert.Equal(graph.Nodes[i].Op.Describe(), back.Nodes[i].Op.Describe());
            Assert.Equal(graph.Nodes[i].Inputs, back.Nodes[i].Inputs);
        }
        Assert.Equal(graph.Shapes[graph.Output], back.Shapes[back.Output]);
        Assert.Equal((graph.FeatureNode, graph.ClassifierNode, graph.NumFeatures), (back.FeatureNode, back.ClassifierNode, back.NumFeatures));
        Assert.Equal(graph.Groups.Select(g => g.Name), back.Groups.Select(g => g.Name));
        Assert.Equal(graph.RegistrationOrder, back.RegistrationOrder);
        Assert.True(GraphJson.ParameterElements(graph) > 0);
    }

    [Fact]
    public void Parameter_count_is_the_real_parameter_count()
    {
        foreach (var name in new[] { "resnet50", "mobilenet_v2", "resnetv2_50x1_bit", "resnet18_cntk" })
        {
            var graph = ModelZoo.Get(name).Build(new ModelOptions());
            using var module = new GraphModule(graph);
            long actual = module.state_dict().Values.Sum(t => t.numel());
            // The count comes from the ops' declared parameter shapes, which are what the layers register.
            Assert.True(GraphJson.ParameterElements(graph) == actual, $"{name}: declared {GraphJson.ParameterElements(graph)}, allocated {actual}");
        }
    }

    private const string Good = """
        {"name":"g","inputShape":[1,3,8,8],"nodes":[
          {"name":"conv","op":{"op":"Conv2dOp","inChannels":3,"outChannels":4,"kernel":{"h":3,"w":3},"stride":{"h":1,"w":1},"padding":{"kind":"explicit","top":1,"left":1,"bottom":1,"right":1},"dilation":{"h":1,"w":1},"groups":1,"bias":true,"weightStandardizationEps":null},"inputs":["input"]},
          {"name":"act","op":{"op":"ActivationOp","activation":"relu","alpha":0,"beta":0},"inputs":["conv"]}],
         "output":"act","featureNode":"act","classifierNode":null,"groups":[{"name":"stem","prefixes":["conv"]}],"auxOutputs":[],"registrationOrder":null}
        """;

    [Fact]
    public void A_hand_written_description_builds()
    {
        var g = GraphJson.Deserialize(Good);
        Assert.Equal([1L, 4, 8, 8], g.Shapes["act"]);
        Assert.Equal(3 * 4 * 9 + 4, GraphJson.ParameterElements(g));
    }

    [Theory]
    [InlineData("not json", "not a valid graph")]
    [InlineData("""{"op":"System.IO.File"}""", "not a valid graph")]
    public void Garbage_is_refused(string json, string expected)
    {
        var e = Assert.Throws<GraphException>(() => GraphJson.Deserialize(json));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("\"op\":\"ActivationOp\"", "\"op\":\"ProcessStartInfo\"")]          // a type outside the closed list
    [InlineData("\"inputs\":[\"conv\"]", "\"inputs\":[\"act\"]")]                    // a cycle
    [InlineData("\"inputs\":[\"input\"]", "\"inputs\":[\"nowhere\"]")]              // a missing input
    [InlineData("\"inChannels\":3", "\"inChannels\":5")]                              // shapes that do not fit
    [InlineData("\"outChannels\":4", "\"outChannels\":-4")]                           // absurd sizes
    [InlineData("\"inputShape\":[1,3,8,8]", "\"inputShape\":[1,3,8]")]
    [InlineData("\"groups\":1,", "\"groups\":1,\"evil\":1,")]                         // unknown members
    public void Hostile_descriptions_are_refused(string from, string to)
    {
        Assert.Contains(from, Good);
        Assert.Throws<GraphException>(() => GraphJson.Deserialize(Good.Replace(from, to)));
    }

    [Fact]
    public void A_huge_graph_is_measured_before_it_is_built()
    {
        var huge = GraphJson.Deserialize(Good.Replace("\"outChannels\":4", "\"outChannels\":1073741824"));
        Assert.True(GraphJson.ParameterElements(huge) > 1L << 34);
    }
}
