using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Training;

/// <summary>The kind of classifier put on the pooled features.</summary>
public enum HeadKind
{
    /// <summary>One linear layer: softmax (multinomial logistic) regression.</summary>
    Linear,
    /// <summary>A small MLP: linear → ReLU → dropout → linear.</summary>
    Mlp,
}

/// <summary>The new head: its kind, hidden width (MLP) and dropout before its last layer.</summary>
public sealed record HeadSpec
{
    /// <summary>Linear (default) or MLP.</summary>
    public HeadKind Kind { get; init; } = HeadKind.Linear;

    /// <summary>Hidden units of the MLP.</summary>
    public int Hidden { get; init; } = 256;

    /// <summary>Dropout probability before the last linear layer (0: none).</summary>
    public double Dropout { get; init; }
}

/// <summary>
/// Enough to rebuild a trained model's graph: the zoo architecture of the body (or, for a body no zoo builder
/// makes — an imported ONNX network — its whole graph), its input options, and the
/// head. The graph is the body up to its feature node (Keras' <c>include_top=False</c>), global average
/// pooling (<c>head.pool</c>) and the head layers (<c>head.fc</c>, or <c>head.fc1</c>/<c>head.fc2</c>).
/// Stored as JSON in a model file's metadata.
/// </summary>
public sealed record ModelArchitecture
{
    /// <summary>Zoo name of the body (see <c>transfer models</c>); with <see cref="Graph"/>, a description of where
    /// that graph came from ("onnx:model.onnx").</summary>
    public string Zoo { get; init; } = "";

    /// <summary>The body's graph itself, for bodies that are not in the zoo (imported ONNX networks); null for zoo
    /// bodies, which are rebuilt from <see cref="Zoo"/>. Only its nodes up to the feature node are used.</summary>
    public ModelGraph? Graph { get; init; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Input size the graph is built for (null: the family's native size).</summary>
    public int? ImageSize { get; init; }

    /// <summary>The head.</summary>
    public HeadSpec Head { get; init; } = new();

    /// <summary>Number of classes (0: no head, the output is the pooled features).</summary>
    public int NumClasses { get; init; }

    /// <summary>Name of the node where pooled features enter the head.</summary>
    public const string PoolNode = "head.pool";

    /// <summary>Name of the layer group holding the head.</summary>
    public const string HeadGroup = "head";

    /// <summary>True for the parameters and buffers of the head (<c>head.…</c>).</summary>
    public static bool IsHeadTensor(string name) => name.StartsWith(HeadGroup + ".", StringComparison.Ordinal);

    /// <summary>Builds the graph.</summary>
    public ModelGraph BuildGraph()
    {
        var zoo = Graph is null ? ModelZoo.Get(Zoo).Build(new ModelOptions { NumClasses = 0, InChannels = InChannels, ImageSize = ImageSize }) : SizedGraph(Graph);
        var featureNode = zoo.FeatureNode ?? throw new GraphException($"model '{Zoo}' marks no feature node, so no head can be put on it");
        var nodes = zoo.Needed([featureNode]).Select(i => zoo.Nodes[i]).ToList();
        nodes.Add(new Node(PoolNode, new GlobalPoolOp(PoolKind.Avg, KeepDims: false), [featureNode]));
        string last = PoolNode;
        string? classifier = null;
        int features = zoo.NumFeatures;
        if (NumClasses > 0)
        {
            if (Head.Kind == HeadKind.Mlp)
            {
                nodes.Add(new Node("head.fc1", new LinearOp(features, Head.Hidden), [last]));
                nodes.Add(new Node("head.act", new ActivationOp(ActivationKind.Relu), ["head.fc1"]));
                last = "head.act";
                features = Head.Hidden;
            }
            if (Head.Dropout > 0)
            {
                nodes.Add(new Node("head.drop", new DropoutOp(Head.Dropout), [last]));
                last = "head.drop";
            }
            classifier = Head.Kind == HeadKind.Mlp ? "head.fc2" : "head.fc";
            nodes.Add(new Node(classifier, new LinearOp(features, NumClasses), [last]));
            last = classifier;
        }
        var kept = new HashSet<string>(nodes.Select(n => n.Name), StringComparer.Ordinal);
        var groups = zoo.Groups
            .Select(g => g with { Prefixes = g.Prefixes.Where(p => kept.Any(k => k == p || k.StartsWith(p + ".", StringComparison.Ordinal))).ToArray() })
            .Where(g => g.Prefixes.Count > 0 && !string.Equals(g.Name, HeadGroup, StringComparison.OrdinalIgnoreCase))
            .Append(new LayerGroup(HeadGroup, [HeadGroup]))
            .ToArray();
        return new ModelGraph(zoo.Name, zoo.InputShape, nodes, last, featureNode, classifier, groups);
    }

    /// <summary>A stored graph at the requested input: its own channels, and its own size unless <see cref="ImageSize"/>
    /// asks for another (which its ops must allow).</summary>
    private ModelGraph SizedGraph(ModelGraph g)
    {
        if (InChannels != g.InChannels)
            throw new InvalidOptionException(nameof(InChannels), $"graph '{g.Name}' takes {g.InChannels} input channels, not {InChannels}");
        if (ImageSize is not { } size || (g.InputShape[2] == size && g.InputShape[3] == size)) return g;
        return g.With(inputShape: [g.InputShape[0], g.InputShape[1], size, size]);
    }

    /// <summary>Builds the model with freshly initialised weights.</summary>
    public GraphModule Build() => new(BuildGraph());
}
