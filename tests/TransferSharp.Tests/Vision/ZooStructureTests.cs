using TorchSharp;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>
/// Structural promises every zoo model keeps: layer groups that partition the parameters, a
/// replaceable classifier, inputs of other sizes, and (for models without a parity fixture) the reference's
/// state-dict names and shapes.
/// </summary>
[Trait("Category", "Zoo")]
public class ZooStructureTests
{
    public static TheoryData<string> AllModels()
    {
        var data = new TheoryData<string>();
        foreach (var e in ModelZoo.Entries) data.Add(e.Name);
        return data;
    }

    /// <summary>Names and shapes of every parameter and buffer, one layer at a time (a whole
    /// resnetv2_152x2_bit would hold a gigabyte for nothing).</summary>
    private static List<(string Name, long[] Shape, bool IsParameter)> StateOf(ModelGraph graph)
    {
        var result = new List<(string, long[], bool)>();
        foreach (var node in graph.Nodes)
        {
            using var layer = node.Op.CreateLayer();
            foreach (var (name, p) in layer.named_parameters()) result.Add((node.Name + "." + name, p.shape, true));
            foreach (var (name, t) in layer.named_buffers()) result.Add((node.Name + "." + name, t.shape, false));
        }
        return result;
    }

    [Theory]
    [MemberData(nameof(AllModels))]
    public void Layer_groups_cover_every_parameter_exactly_once(string model)
    {
        var graph = ModelZoo.Get(model).Build();
        Assert.True(graph.Groups.Count >= 3, $"{model}: only {graph.Groups.Count} layer groups");
        Assert.Equal("head", graph.Groups[^1].Name);
        var problems = new List<string>();
        foreach (var (name, _, _) in StateOf(graph))
        {
            var groups = graph.Groups.Where(g => g.Contains(name)).Select(g => g.Name).ToList();
            if (groups.Count != 1) problems.Add($"{name} in [{string.Join(", ", groups)}]");
        }
        Assert.True(problems.Count == 0, $"{model}: {problems.Count} tensors not in exactly one group: {string.Join("; ", problems.Take(10))}");
        // Every group holds something to train, and the classifier sits in the head.
        var parameterGroups = StateOf(graph).Where(s => s.IsParameter).Select(s => graph.GroupOf(s.Name)!.Name).ToHashSet();
        Assert.Equal(graph.Groups.Select(g => g.Name).ToHashSet(), parameterGroups);
        Assert.Equal("head", graph.GroupOf(graph.ClassifierNode!)!.Name);
    }

    /// <summary>Models without a parity fixture and the folder of tests/data holding their reference's state-dict list.</summary>
    public static TheoryData<string, string> ModelsWithoutFixture() => new()
    {
        { "resnetv2_101x1_bit", "timm_state_dicts" },
        { "resnetv2_152x2_bit", "timm_state_dicts" },
        { "efficientnet_v2_s", "torchvision_state_dicts" },
    };

    [Theory]
    [MemberData(nameof(ModelsWithoutFixture))]
    public void State_dict_names_and_shapes_equal_the_references(string model, string folder)
    {
        var lines = File.ReadAllLines(Path.Combine(Paths.TestData, folder, model + ".txt")).Where(l => l.Length > 0).ToList();
        var expected = lines
            .Select(l => l.Split(' '))
            .ToDictionary(f => f[0], f => f[1].Length == 0 ? "" : f[1]);
        var ours = StateOf(ModelZoo.Get(model).Build())
            .ToDictionary(s => s.Name, s => string.Join(",", s.Shape));
        var missing = expected.Keys.Except(ours.Keys).ToList();
        var extra = ours.Keys.Except(expected.Keys).ToList();
        var misShaped = expected.Keys.Intersect(ours.Keys).Where(k => expected[k] != ours[k])
            .Select(k => $"{k}: ours [{ours[k]}], reference [{expected[k]}]").ToList();
        Assert.True(missing.Count + extra.Count + misShaped.Count == 0,
            $"{model}: missing [{string.Join(", ", missing.Take(5))}], unexpected [{string.Join(", ", extra.Take(5))}], mis-shaped [{string.Join("; ", misShaped.Take(5))}]");
        Assert.Equal(expected.Count, ours.Count);
        if (folder == "torchvision_state_dicts")
        {
            // torchvision lists parameters and buffers module by module, as our registration order does.
            var graph = ModelZoo.Get(model).Build();
            using var module = new GraphModule(graph);
            var order = module.state_dict().Keys.ToList();
            Assert.Equal(lines.Select(l => l.Split(' ')[0]), order);
        }
    }

    /// <summary>One model per family (the first registered), at an input size it was not built for.</summary>
    public static TheoryData<string, int> OnePerFamily()
    {
        var data = new TheoryData<string, int>();
        foreach (var e in ModelZoo.Entries.GroupBy(e => e.Family).Select(g => g.First()))
            data.Add(e.Name, e.NativeSize switch { 224 => 256, 299 => 320, _ => 256 });
        return data;
    }

    [Theory]
    [MemberData(nameof(OnePerFamily))]
    public void Classifier_resets_and_other_input_sizes_run(string model, int size)
    {
        using var scope = NewDisposeScope();
        using var net = ModelZoo.Create(model);
        Assert.NotEqual(size, (int)net.Graph.InputShape[2]);
        var classifier = net.Graph.ClassifierNode!;
        var classifierInput = net.Graph.Node(classifier).Inputs[0];
        var oldShape = net.state_dict()[classifier + ".weight"].shape;
        var summary = net.Summary([1, 3, size, size]);
        Assert.Equal(net.Graph.Nodes.Count, summary.Rows.Count);
        Assert.Equal(net.ParameterCount, summary.Parameters);
        Assert.True(summary.Macs > 0);

        net.ResetClassifier(5);
        net.eval();
        Assert.Equal(5, net.NumClasses);
        var newShape = net.state_dict()[classifier + ".weight"].shape;
        Assert.Equal([5, .. oldShape[1..]], newShape);

        using var _ = no_grad();
        using var generator = new Generator(1234);
        var x = rand([1, 3, size, size], generator: generator) * 2 - 1;
        var taps = net.Taps(x, net.Graph.Output, classifierInput);
        var logits = taps[net.Graph.Output];
        var preLogits = taps[classifierInput];
        Assert.Equal([1L, 5], logits.shape);
        Assert.True(logits.isfinite().all().item<bool>(), $"{model}: non-finite logits at {size}×{size}");

        // The new classifier is what maps the pre-logits to the logits.
        var weight = net.state_dict()[classifier + ".weight"].flatten(1);
        var expected = nn.functional.linear(preLogits, weight, net.state_dict()[classifier + ".bias"]);
        Assert.True(expected.allclose(logits, rtol: 1e-4, atol: 1e-5), $"{model}: logits are not the new classifier applied to its input");

        var features = net.PooledFeatures(x);
        Assert.Equal([1L, net.NumFeatures], features.shape);

        // Removing the classifier leaves the pre-logits as the output.
        net.ResetClassifier(0);
        Assert.Equal(0, net.NumClasses);
        var headless = net.forward(x);
        Assert.True(headless.allclose(preLogits), $"{model}: without a classifier the output should be the pre-logits");
    }
}
