using System.Globalization;

namespace TransferSharp.Vision.Graph;

/// <summary>The kind of classifier put on the pre-logits features.</summary>
public enum HeadKind
{
    /// <summary>One linear layer: softmax (multinomial logistic) regression.</summary>
    Linear,
    /// <summary>A small MLP: linear → ReLU → (dropout) → linear.</summary>
    Mlp,
}

/// <summary>What a new classifier looks like: its kind, hidden width (MLP), dropout before its last layer, and the
/// pooling put on a graph that ends in a feature map.</summary>
public sealed record HeadSpec
{
    /// <summary>Linear (default) or MLP.</summary>
    public HeadKind Kind { get; init; } = HeadKind.Linear;

    /// <summary>Hidden units of the MLP.</summary>
    public int Hidden { get; init; } = 256;

    /// <summary>Dropout probability before the last linear layer; null keeps the model's own (the reference's
    /// default: none for ResNet, 0.5 for Inception v3 and VGG, 0.2 for MobileNetV2).</summary>
    public double? Dropout { get; init; }

    /// <summary>Global pooling put on a graph whose output is a feature map or a token sequence (a body without a head).</summary>
    public PoolKind Pool { get; init; } = PoolKind.Avg;

    /// <summary>Checks the values, naming the first wrong one.</summary>
    public void Validate()
    {
        if (Hidden < 1) throw new InvalidOptionException(nameof(Hidden), $"Hidden must be at least 1 (got {Hidden})");
        if (Dropout is { } p && (p < 0 || p >= 1 || double.IsNaN(p)))
            throw new InvalidOptionException(nameof(Dropout), $"Dropout must be in [0, 1) (got {p})");
    }
}

// The one head builder. Every classifier in TransferSharp is made here: the zoo families' reference heads (through
// GraphBuilder.Head), a new head for training, a head on an imported ONNX body. A reset keeps the reference's node
// names ("fc", "classifier.1", "head.fc", "last_linear"), so a fine-tuned model's state dict is the reference model's
// with the new class count. Nodes the builder adds next to the classifier are named after it ("fc_hidden", "fc_act",
// "fc_drop"), which is how a later reset finds and replaces them.
public sealed partial class ModelGraph
{
    /// <summary>Name of the layer group that holds the head (every zoo family declares it; new head nodes join it).</summary>
    public const string HeadGroup = "head";

    private static readonly string[] OwnHeadSuffixes = ["_hidden", "_act", "_drop"];

    private bool IsOwnHeadNode(string node) =>
        ClassifierNode is { } c && OwnHeadSuffixes.Any(s => node == c + s);

    /// <summary>
    /// The node whose output the head reads (timm's pre-logits): the classifier's input with the dropout and the MLP
    /// layers of the head walked back over; the output itself for a graph without a classifier. Head training on
    /// cached features caches this node's output.
    /// </summary>
    public string PreLogitsNode
    {
        get
        {
            if (ClassifierNode is not { } c) return Output;
            var node = Node(c).Inputs[0];
            while (node != InputName && (IsOwnHeadNode(node) || Node(node).Op is DropoutOp)) node = Node(node).Inputs[0];
            return node;
        }
    }

    /// <summary>Size of the pre-logits features (the input of the head).</summary>
    public int PreLogitsSize => (int)Shapes[PreLogitsNode][^1];

    /// <summary>The nodes after <see cref="PreLogitsNode"/> up to the output: what a head trained on cached features
    /// trains (empty for a graph without a classifier).</summary>
    public IReadOnlyList<string> HeadNodes => _headNodes ??= FindHeadNodes();

    // The graph is immutable: found once (checkpoints ask for every tensor of every epoch).
    private string[]? _headNodes;
    private HashSet<string>? _headNodeSet;

    private string[] FindHeadNodes()
    {
        if (ClassifierNode is null) return [];
        var pre = PreLogitsNode;
        var after = pre == InputName ? 0 : IndexOf(pre) + 1;
        var needed = Needed([Output]).ToHashSet();
        return Enumerable.Range(after, Nodes.Count - after).Where(needed.Contains).Select(i => Nodes[i].Name).ToArray();
    }

    /// <summary>True for a parameter or buffer name of a <see cref="HeadNodes"/> node.</summary>
    public bool IsHeadTensor(string tensorName)
    {
        int dot = tensorName.LastIndexOf('.');
        _headNodeSet ??= new HashSet<string>(HeadNodes, StringComparer.Ordinal);
        return dot > 0 && _headNodeSet.Contains(tensorName[..dot]);
    }

    /// <summary>
    /// The graph with a new classifier of <paramref name="numClasses"/> outputs (freshly initialised when instantiated),
    /// or without one (0: the output becomes the pre-logits). A classifier that exists keeps its name, layout and place;
    /// the MLP layers and dropout a previous reset added are replaced. A graph without one gets global pooling (when its
    /// output is a feature map or a token sequence, which becomes the feature node) and a classifier named <paramref name="name"/> (default
    /// "fc"). New nodes join the layer group "head".
    /// </summary>
    public ModelGraph WithClassifier(int numClasses, HeadSpec? head = null, string? name = null, bool weightAs1x1Conv = false)
    {
        if (numClasses < 0) throw new InvalidOptionException(nameof(numClasses), $"the number of classes must be at least 0 (got {numClasses})");
        head ??= new HeadSpec();
        head.Validate();
        var nodes = Nodes.ToList();
        var removed = new HashSet<string>(StringComparer.Ordinal);
        string pre = Output;
        string? feature = FeatureNode;
        string classifier;
        if (ClassifierNode is { } c)
        {
            var old = (LinearOp)Node(c).Op;
            weightAs1x1Conv = old.WeightAs1x1Conv;
            classifier = c;
            removed.Add(c);
            // Ops an imported file ends its classifier with (a softmax, a flatten) go with it: the new head outputs logits.
            for (var after = Output; after != c && Node(after).Op is SoftmaxOp or FlattenOp or ReshapeOp or SqueezeOp or IdentityOp or DropoutOp;
                 after = Node(after).Inputs[0])
                removed.Add(after);
            pre = Node(c).Inputs[0];
            while (pre != InputName && IsOwnHeadNode(pre)) { removed.Add(pre); pre = Node(pre).Inputs[0]; }
            if (!removed.Contains(Output) || Nodes.Any(n => !removed.Contains(n.Name) && n.Inputs.Any(removed.Contains)))
                throw new GraphException($"graph '{Name}': the classifier '{c}' is not the last layer, so it cannot be replaced");
            nodes.RemoveAll(n => removed.Contains(n.Name));
        }
        else
        {
            classifier = name ?? "fc";
        }
        var added = new List<string>();
        bool Taken(string n) => (HasNode(n) && !removed.Contains(n)) || added.Contains(n);
        string Unique(string baseName)
        {
            var candidate = baseName;
            for (int k = 1; Taken(candidate); k++) candidate = baseName + "_" + k.ToString(CultureInfo.InvariantCulture);
            return candidate;
        }
        string Append(string nodeName, Op op, string input)
        {
            nodes.Add(new Node(nodeName, op, [input]));
            added.Add(nodeName);
            return nodeName;
        }
        var shape = Shapes[pre];
        if (ClassifierNode is null)
        {
            if (numClasses > 0 && Taken(classifier)) throw new GraphException($"graph '{Name}' already has a node '{classifier}'");
            if (shape.Length == 4)
            {
                feature = pre;
                pre = Append(Unique("global_pool"), new GlobalPoolOp(head.Pool, KeepDims: false), pre);
                shape = [shape[0], shape[1]];
            }
            else if (shape.Length == 3)
            {
                // A token sequence [N, T, C] (a transformer cut inside): pooled over its tokens.
                feature = pre;
                pre = Append(Unique("global_pool"), new ReduceOp(head.Pool, [1], KeepDims: false), pre);
                shape = [shape[0], shape[2]];
            }
            else if (shape.Length != 2)
                throw new GraphException($"graph '{Name}': output shape [{string.Join(",", shape)}] is neither a feature map, a token sequence nor a feature vector");
        }
        string output = pre;
        if (numClasses > 0)
        {
            int width = (int)shape[^1];
            var x = pre;
            if (head.Kind == HeadKind.Mlp)
            {
                x = Append(classifier + "_hidden", new LinearOp(width, head.Hidden), x);
                x = Append(classifier + "_act", new ActivationOp(ActivationKind.Relu), x);
                width = head.Hidden;
                if (head.Dropout is > 0) x = Append(classifier + "_drop", new DropoutOp(head.Dropout.Value), x);
            }
            else if (head.Dropout is { } p)
            {
                // The model's own dropout right before the classifier takes the requested rate; otherwise one is added.
                if (x != InputName && !added.Contains(x) && Node(x).Op is DropoutOp)
                    nodes[nodes.FindIndex(n => n.Name == x)] = Node(x) with { Op = new DropoutOp(p) };
                else if (p > 0) x = Append(classifier + "_drop", new DropoutOp(p), x);
            }
            output = Append(classifier, new LinearOp(width, numClasses, Bias: true, WeightAs1x1Conv: weightAs1x1Conv), x);
        }
        var groups = Groups.ToList();
        var ungrouped = added.Where(n => !groups.Any(g => g.Contains(n))).ToArray();
        if (ungrouped.Length > 0)
        {
            int h = groups.FindIndex(g => g.Name == HeadGroup);
            if (h >= 0) groups[h] = groups[h] with { Prefixes = [.. groups[h].Prefixes, .. ungrouped] };
            else groups.Add(new LayerGroup(HeadGroup, ungrouped));
        }
        var order = RegistrationOrder is { } reg ? reg.Where(n => !removed.Contains(n) || added.Contains(n)).Concat(added.Where(a => !reg.Contains(a))).ToArray() : null;
        return new ModelGraph(Name, InputShape, nodes, output, feature, numClasses > 0 ? classifier : null, groups, AuxOutputs, InputType, ExtraInputs) { RegistrationOrder = order };
    }
}
