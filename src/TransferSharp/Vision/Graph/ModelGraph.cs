namespace TransferSharp.Vision.Graph;

/// <summary>A graph is malformed, or an op cannot take the shapes it is given.</summary>
public class GraphException : TransferSharpException
{
    /// <summary>Creates the exception. Control characters in the message (a description quoted from a hostile file)
    /// are shown escaped.</summary>
    public GraphException(string message) : base(IO.Printable.Of(message)) { }
}

/// <summary>The element type of a graph input. The graph computes in float32; integer inputs hold indices (token ids,
/// token types) or masks that ops such as <see cref="EmbeddingOp"/> and <see cref="SelfAttentionOp"/> read.</summary>
public enum ElementType
{
    /// <summary>32-bit floats (images, features).</summary>
    Float32,
    /// <summary>64-bit integers (token ids, attention masks, token type ids), as Hugging Face and ONNX exporters write them.</summary>
    Int64,
}

/// <summary>A named input of a graph beside its main input (a text encoder's <c>attention_mask</c> and
/// <c>token_type_ids</c> beside its token ids).</summary>
/// <param name="Name">The name nodes read it by; distinct from every node and from <see cref="ModelGraph.InputName"/>.</param>
/// <param name="Shape">Its shape at the graph's native input shape. When it equals the main input's shape it follows
/// that shape at any other input shape (batch and sequence length); otherwise only its batch dimension follows.</param>
/// <param name="Type">Its element type.</param>
public sealed record GraphInput(string Name, long[] Shape, ElementType Type)
{
    /// <inheritdoc />
    public bool Equals(GraphInput? other) => other is not null && Name == other.Name && Type == other.Type && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Name, Type, Shape.Length);
}

/// <summary>One named node: an op applied to the outputs of earlier nodes (or the graph input).</summary>
/// <param name="Name">Unique name; for nodes with parameters it is the module path of the reference
/// implementation ("layer1.0.conv1"), so parameter names are Name + ".weight" and so on.</param>
/// <param name="Op">What the node computes.</param>
/// <param name="Inputs">Names of the nodes (or the graph input) it reads, in order.</param>
public sealed record Node(string Name, Op Op, IReadOnlyList<string> Inputs);

/// <summary>A named group of layers, frozen or unfrozen together; members are node-name prefixes.</summary>
public sealed record LayerGroup(string Name, IReadOnlyList<string> Prefixes)
{
    /// <summary>True when the node or parameter name lies in this group.</summary>
    public bool Contains(string name) =>
        Prefixes.Any(p => name == p || name.StartsWith(p + ".", StringComparison.Ordinal) || p.Length == 0);
}

/// <summary>
/// A model as a layer graph: nodes in topological order, a main input (an image, or a text encoder's token ids) and
/// any further named inputs (<see cref="ExtraInputs"/>: attention mask, token types), the output, and the landmarks
/// transfer learning needs (the feature map, the classifier, the layer groups).
/// Immutable; rewrites return new graphs.
/// </summary>
public sealed partial class ModelGraph
{
    /// <summary>Name of the graph input.</summary>
    public const string InputName = "input";

    /// <summary>Creates and validates a graph.</summary>
    public ModelGraph(string name, long[] inputShape, IReadOnlyList<Node> nodes, string output, string? featureNode,
        string? classifierNode, IReadOnlyList<LayerGroup> groups, IReadOnlyList<string>? auxOutputs = null,
        ElementType inputType = ElementType.Float32, IReadOnlyList<GraphInput>? extraInputs = null)
    {
        Name = name;
        InputShape = inputShape;
        InputType = inputType;
        ExtraInputs = extraInputs ?? [];
        Nodes = nodes;
        Output = output;
        FeatureNode = featureNode;
        ClassifierNode = classifierNode;
        Groups = groups;
        AuxOutputs = auxOutputs ?? [];
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        Validate();
        Shapes = InferShapes(inputShape);
    }

    private readonly Dictionary<string, int> _index;

    /// <summary>The graph's name (the zoo name for zoo models).</summary>
    public string Name { get; }

    /// <summary>The native input shape [1, C, H, W] the graph was built for; other sizes work where the ops allow.</summary>
    public long[] InputShape { get; }

    /// <summary>The element type of the main input (<see cref="ElementType.Int64"/> for a text encoder's token ids).</summary>
    public ElementType InputType { get; }

    /// <summary>Named inputs beside the main one (empty for vision models).</summary>
    public IReadOnlyList<GraphInput> ExtraInputs { get; }

    /// <summary>True when <paramref name="name"/> is the main input or one of <see cref="ExtraInputs"/>.</summary>
    public bool IsInput(string name) => name == InputName || ExtraInputs.Any(i => i.Name == name);

    /// <summary>Nodes in execution order.</summary>
    public IReadOnlyList<Node> Nodes { get; }

    /// <summary>The node whose output is the model output (logits, or features when headless).</summary>
    public string Output { get; }

    /// <summary>The node whose output is the last feature map [N, C, H, W] or token sequence [N, T, C] (a vision
    /// transformer's final norm), before any pooling; null if unknown.</summary>
    public string? FeatureNode { get; }

    /// <summary>The final linear layer that <see cref="GraphModule.ResetClassifier"/> replaces; null when headless.</summary>
    public string? ClassifierNode { get; }

    /// <summary>Extra outputs computed only in training mode (Inception v3's auxiliary logits).</summary>
    public IReadOnlyList<string> AuxOutputs { get; }

    /// <summary>The order in which node parameters are registered (and listed in the state dict) when it
    /// differs from execution order; null: execution order.</summary>
    public IReadOnlyList<string>? RegistrationOrder { get; init; }

    /// <summary>Layer groups, from the input side to the head.</summary>
    public IReadOnlyList<LayerGroup> Groups { get; }

    /// <summary>Output shape of every node (and the input) at <see cref="InputShape"/>.</summary>
    public IReadOnlyDictionary<string, long[]> Shapes { get; }

    /// <summary>Channels of the image input.</summary>
    public int InChannels => (int)InputShape[1];

    /// <summary>The size of pooled features: the channels of the feature map, or the width of what the model's own
    /// token pooling makes of its token sequence.</summary>
    public int NumFeatures => FeatureNode is null ? (int)Shapes[Output][^1]
        : TokenPoolNode is { } pool ? (int)Shapes[pool][^1]
        : Shapes[FeatureNode].Length == 3 ? (int)Shapes[FeatureNode][^1]
        : (int)Shapes[FeatureNode][1];

    /// <summary>The node that pools the feature node's token sequence the model's own way (a <see cref="TokenPoolOp"/>
    /// reading <see cref="FeatureNode"/>: ViT's class token), or null (a feature map, pooled by global average
    /// pooling; a token sequence without one, pooled by the mean of its tokens).</summary>
    public string? TokenPoolNode => FeatureNode is { } f && Shapes[f].Length == 3
        ? Nodes.FirstOrDefault(n => n.Op is TokenPoolOp && n.Inputs.Count == 1 && n.Inputs[0] == f)?.Name
        : null;

    /// <summary>How pooled features are made from the feature node's output: global <paramref name="pool"/> pooling of a
    /// feature map; the model's own token pooling of a token sequence (the mean of all tokens when it has none, or when
    /// <paramref name="pool"/> is not the default average), or the maximum over tokens for <see cref="PoolKind.Max"/>.</summary>
    public Op FeaturePooling(PoolKind pool = PoolKind.Avg)
    {
        var f = FeatureNode ?? throw new GraphException($"graph '{Name}' marks no feature node; use Taps with a node name");
        if (Shapes[f].Length != 3) return new GlobalPoolOp(pool, KeepDims: false);
        if (pool == PoolKind.Avg && TokenPoolNode is { } own) return Node(own).Op;
        return new ReduceOp(pool, [1], KeepDims: false);
    }

    /// <summary>Number of outputs of the classifier (0 when headless).</summary>
    public int NumClasses => ClassifierNode is null ? 0 : ((LinearOp)Node(ClassifierNode).Op).OutFeatures;

    /// <summary>Index of a node in <see cref="Nodes"/>.</summary>
    public int IndexOf(string name) =>
        _index.TryGetValue(name, out var i) ? i : throw new GraphException($"graph '{Name}' has no node '{name}'");

    /// <summary>True when the graph has a node of that name.</summary>
    public bool HasNode(string name) => _index.ContainsKey(name);

    /// <summary>The node of that name.</summary>
    public Node Node(string name) => Nodes[IndexOf(name)];

    /// <summary>The group a node or parameter name belongs to (the last matching group), or null.</summary>
    public LayerGroup? GroupOf(string name)
    {
        LayerGroup? found = null;
        foreach (var g in Groups) if (g.Contains(name)) found = g;
        return found;
    }

    private void Validate()
    {
        var inputNames = new HashSet<string>(StringComparer.Ordinal) { InputName };
        foreach (var input in ExtraInputs)
        {
            if (string.IsNullOrEmpty(input.Name) || !inputNames.Add(input.Name))
                throw new GraphException($"graph '{Name}': input name '{input.Name}' is empty or used twice");
            if (input.Shape.Length == 0 || input.Shape.Any(d => d <= 0))
                throw new GraphException($"graph '{Name}': input '{input.Name}' has an invalid shape [{string.Join(",", input.Shape)}]");
        }
        for (int i = 0; i < Nodes.Count; i++)
        {
            var n = Nodes[i];
            if (string.IsNullOrEmpty(n.Name) || inputNames.Contains(n.Name))
                throw new GraphException($"graph '{Name}': node {i} has an invalid name '{n.Name}'");
            if (!_index.TryAdd(n.Name, i))
                throw new GraphException($"graph '{Name}': two nodes are named '{n.Name}'");
            if (n.Op.Arity >= 0 && n.Inputs.Count != n.Op.Arity)
                throw new GraphException($"graph '{Name}': node '{n.Name}' ({n.Op.Kind}) takes {n.Op.Arity} inputs, has {n.Inputs.Count}");
            if (n.Op.Arity < 0 && n.Inputs.Count == 0)
                throw new GraphException($"graph '{Name}': node '{n.Name}' ({n.Op.Kind}) has no inputs");
        }
        for (int i = 0; i < Nodes.Count; i++)
        {
            foreach (var input in Nodes[i].Inputs)
            {
                if (inputNames.Contains(input)) continue;
                if (!_index.TryGetValue(input, out var j))
                    throw new GraphException($"graph '{Name}': node '{Nodes[i].Name}' reads '{input}', which no node produces");
                if (j >= i)
                    throw new GraphException($"graph '{Name}': node '{Nodes[i].Name}' reads '{input}', which comes later: the graph has a cycle or is not in topological order");
            }
        }
        foreach (var name in new[] { Output, FeatureNode, ClassifierNode }.Concat(AuxOutputs))
        {
            if (name is not null && !inputNames.Contains(name) && !_index.ContainsKey(name))
                throw new GraphException($"graph '{Name}': it names '{name}' as a landmark, but has no such node");
        }
        if (ClassifierNode is not null && Node(ClassifierNode).Op is not LinearOp)
            throw new GraphException($"graph '{Name}': classifier '{ClassifierNode}' is not a Linear layer");
    }

    /// <summary>Output shapes of all nodes for a main input of the given shape (an image [N, C, H, W] for zoo models, token
    /// ids [N, T] for text encoders); the extra inputs follow it (see <see cref="GraphInput.Shape"/>).</summary>
    public Dictionary<string, long[]> InferShapes(long[] inputShape)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal) { [InputName] = inputShape };
        foreach (var input in ExtraInputs) shapes[input.Name] = ExtraInputShape(input, inputShape);
        foreach (var n in Nodes)
        {
            var ins = n.Inputs.Select(i => shapes[i]).ToList();
            try
            {
                shapes[n.Name] = n.Op.InferShape(ins);
            }
            catch (GraphException e)
            {
                throw new GraphException($"graph '{Name}', node '{n.Name}': {e.Message}");
            }
        }
        return shapes;
    }

    /// <summary>The shape of an extra input when the main input has <paramref name="inputShape"/>.</summary>
    public long[] ExtraInputShape(GraphInput input, long[] inputShape)
    {
        if (input.Shape.SequenceEqual(InputShape)) return (long[])inputShape.Clone();
        var shape = (long[])input.Shape.Clone();
        shape[0] = inputShape[0];
        return shape;
    }

    /// <summary>A copy with some parts changed.</summary>
    public ModelGraph With(IReadOnlyList<Node>? nodes = null, string? output = null, string? featureNode = null,
        string? classifierNode = null, bool clearClassifier = false, IReadOnlyList<LayerGroup>? groups = null,
        IReadOnlyList<string>? auxOutputs = null, long[]? inputShape = null, string? name = null, bool clearFeatureNode = false) =>
        new(name ?? Name, inputShape ?? InputShape, nodes ?? Nodes, output ?? Output, clearFeatureNode ? null : featureNode ?? FeatureNode,
            clearClassifier ? null : classifierNode ?? ClassifierNode, groups ?? Groups, auxOutputs ?? AuxOutputs, InputType,
            inputShape is null ? ExtraInputs : ExtraInputs.Select(i => i with { Shape = ExtraInputShape(i, inputShape) }).ToArray())
        {
            // Kept only while it still names exactly the graph's nodes (a rewrite may add or drop nodes).
            RegistrationOrder = RegistrationOrder is { } order && nodes is null ? order : null,
        };

    /// <summary>A graph whose output is <paramref name="node"/>: only the nodes it needs remain; the
    /// classifier is dropped; the feature node becomes <paramref name="node"/> when it is a feature map or a token
    /// sequence.</summary>
    public ModelGraph CutAt(string node)
    {
        var keep = Needed([node]);
        var names = keep.Select(i => Nodes[i].Name).ToHashSet(StringComparer.Ordinal);
        var nodes = keep.Select(i => Nodes[i]).ToArray();
        string? feature = Shapes[node].Length is 3 or 4 ? node
            : FeatureNode is { } f && names.Contains(f) ? f : null;
        var groups = Groups.Select(g => g with { Prefixes = g.Prefixes.Where(p => names.Contains(p) || names.Any(n => n.StartsWith(p + ".", StringComparison.Ordinal))).ToArray() })
            .Where(g => g.Prefixes.Count > 0).ToArray();
        return new ModelGraph(Name, InputShape, nodes, node, feature, null, groups, null, InputType, ExtraInputs);
    }

    /// <summary>Indices of the nodes needed to compute the given outputs, in execution order.</summary>
    public int[] Needed(IEnumerable<string> outputs)
    {
        var need = new bool[Nodes.Count];
        var stack = new Stack<int>();
        foreach (var o in outputs) if (!IsInput(o)) stack.Push(IndexOf(o));
        while (stack.Count > 0)
        {
            int i = stack.Pop();
            if (need[i]) continue;
            need[i] = true;
            foreach (var input in Nodes[i].Inputs) if (!IsInput(input)) stack.Push(_index[input]);
        }
        return Enumerable.Range(0, Nodes.Count).Where(i => need[i]).ToArray();
    }
}
