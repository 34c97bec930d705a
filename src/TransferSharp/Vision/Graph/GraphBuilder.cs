namespace TransferSharp.Vision.Graph;

/// <summary>A symbolic value while a graph is being built: the node that produces it and its shape.</summary>
public readonly record struct Sym(string Name, long[] Shape)
{
    /// <summary>Channels (dimension 1).</summary>
    public int Channels => (int)Shape[1];
}

/// <summary>
/// Declares a layer graph in the style of Keras' functional API: each call adds a named node and
/// returns its output. Names given inside <see cref="Scope"/> are prefixed with the scope path, so a
/// family writes <c>b.Conv(x, "conv1", …)</c> inside <c>b.Scope("layer1.0")</c> and gets the
/// reference's parameter names ("layer1.0.conv1.weight").
/// </summary>
public sealed class GraphBuilder
{
    private readonly string _name;
    private readonly long[] _inputShape;
    private readonly List<Node> _nodes = [];
    private readonly Dictionary<string, long[]> _shapes = new(StringComparer.Ordinal);
    private readonly List<LayerGroup> _groups = [];
    private readonly List<string> _aux = [];
    private readonly Stack<string> _scopes = new();
    private string? _features;

    /// <summary>Starts a graph for inputs of [1, channels, height, width].</summary>
    public GraphBuilder(string name, int channels, int height, int width) : this(name, [1, channels, height, width])
    {
    }

    /// <summary>Starts a graph for inputs of <paramref name="inputShape"/> (batch first, of any rank ≥ 2) holding
    /// <paramref name="inputType"/> (token ids [N, T] of a text encoder are <see cref="ElementType.Int64"/>).</summary>
    public GraphBuilder(string name, long[] inputShape, ElementType inputType = ElementType.Float32)
    {
        _name = name;
        _inputShape = inputShape;
        _inputType = inputType;
        _shapes[ModelGraph.InputName] = _inputShape;
        Input = new Sym(ModelGraph.InputName, _inputShape);
    }

    /// <summary>The main input (an image, or a text encoder's token ids).</summary>
    public Sym Input { get; }

    private readonly ElementType _inputType;
    private readonly List<GraphInput> _extraInputs = [];

    /// <summary>Declares a named input beside the main one (a text encoder's attention mask or token type ids); its
    /// <paramref name="shape"/> is the one at the graph's native input shape (see <see cref="GraphInput.Shape"/>).</summary>
    public Sym AddInput(string name, long[] shape, ElementType type)
    {
        if (_shapes.ContainsKey(name)) throw new GraphException($"graph '{_name}': input '{name}' is already a node or input");
        _extraInputs.Add(new GraphInput(name, shape, type));
        _shapes[name] = shape;
        return new Sym(name, shape);
    }

    /// <summary>Prefixes the names of nodes added until the returned scope is disposed.</summary>
    public IDisposable Scope(string prefix)
    {
        _scopes.Push(Qualify(prefix));
        return new PopScope(_scopes);
    }

    private sealed class PopScope(Stack<string> scopes) : IDisposable
    {
        public void Dispose() => scopes.Pop();
    }

    /// <summary>The full name of a node declared here with a local name.</summary>
    public string Qualify(string local) => _scopes.Count == 0 ? local : _scopes.Peek() + "." + local;

    /// <summary>Adds any op. A null name picks a unique one from the op kind.</summary>
    public Sym Add(Op op, string? name, params Sym[] inputs)
    {
        string full = name is null ? Unique(Qualify(op.Kind.ToLowerInvariant())) : Qualify(name);
        if (_shapes.ContainsKey(full)) throw new GraphException($"graph '{_name}': node '{full}' declared twice");
        long[] shape;
        try
        {
            shape = op.InferShape(inputs.Select(i => i.Shape).ToList());
        }
        catch (GraphException e)
        {
            throw new GraphException($"graph '{_name}', node '{full}': {e.Message}");
        }
        _nodes.Add(new Node(full, op, inputs.Select(i => i.Name).ToArray()));
        _shapes[full] = shape;
        return new Sym(full, shape);
    }

    /// <summary>The op of node <paramref name="name"/>, or null when there is none.</summary>
    internal Op? NodeOp(string name) => _nodes.Find(n => n.Name == name)?.Op;

    /// <summary>Replaces the op of node <paramref name="name"/> by one of the same output shape (the importer giving a
    /// Linear the bias a following Add held).</summary>
    internal void ReplaceOp(string name, Op op)
    {
        int i = _nodes.FindIndex(n => n.Name == name);
        if (i < 0) throw new GraphException($"graph '{_name}': no node '{name}' to replace");
        var shape = op.InferShape(_nodes[i].Inputs.Select(input => _shapes[input]).ToList());
        if (!shape.SequenceEqual(_shapes[name])) throw new GraphException($"graph '{_name}': replacing node '{name}' changes its shape");
        _nodes[i] = _nodes[i] with { Op = op };
    }

    private string Unique(string baseName)
    {
        if (!_shapes.ContainsKey(baseName)) return baseName;
        for (int i = 1; ; i++)
        {
            var candidate = baseName + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!_shapes.ContainsKey(candidate)) return candidate;
        }
    }

    /// <summary>2-D convolution; padding defaults to symmetric (k−1)/2·dilation as timm does.</summary>
    public Sym Conv(Sym x, string name, int outChannels, Size2 kernel, Size2? stride = null, PadSpec? padding = null,
        int groups = 1, bool bias = false, Size2? dilation = null, double? weightStandardizationEps = null)
    {
        var d = dilation ?? new Size2(1, 1);
        var pad = padding ?? PadSpec.Symmetric((kernel.H - 1) / 2 * d.H, (kernel.W - 1) / 2 * d.W);
        return Add(new Conv2dOp(x.Channels, outChannels, kernel, stride ?? new Size2(1, 1), pad, d, groups, bias, weightStandardizationEps), name, x);
    }

    /// <summary>Convolution with explicit symmetric integer padding (torchvision style).</summary>
    public Sym Conv(Sym x, string name, int outChannels, Size2 kernel, Size2 stride, int padding, int groups = 1, bool bias = false) =>
        Conv(x, name, outChannels, kernel, stride, PadSpec.Symmetric(padding), groups, bias);

    /// <summary>Convolution (no bias) → BatchNorm → optional activation, the unit most CNNs repeat.</summary>
    public Sym ConvBnAct(Sym x, string convName, string bnName, int outChannels, Size2 kernel, Size2? stride = null,
        PadSpec? padding = null, ActivationKind? act = ActivationKind.Relu, double eps = 1e-5, int groups = 1, string? actName = null,
        double momentum = 0.1)
    {
        x = Conv(x, convName, outChannels, kernel, stride, padding, groups);
        x = BatchNorm(x, bnName, eps, momentum);
        return act is { } a ? Act(x, a, actName) : x;
    }

    /// <summary>
    /// Squeeze-and-excitation (Hu et al. 2018) on <paramref name="x"/>: global average pool (dimensions kept) → 1×1
    /// convolution with bias to <paramref name="squeezeChannels"/> → <paramref name="act"/> → 1×1 convolution with bias
    /// back to the input's channels → <paramref name="gate"/> → the input multiplied by that per-channel gate. Names sit
    /// under <paramref name="scope"/>; the two convolutions are named as the reference names them (torchvision's
    /// "fc1"/"fc2", timm's "conv_reduce"/"conv_expand"), the other nodes have no parameters.
    /// </summary>
    public Sym SqueezeExcite(Sym x, string scope, int squeezeChannels, ActivationKind act, ActivationOp gate,
        string reduceName = "fc1", string expandName = "fc2")
    {
        using var _ = Scope(scope);
        var s = GlobalPool(x, PoolKind.Avg, keepDims: true, name: "avgpool");
        s = Conv(s, reduceName, squeezeChannels, 1, 1, PadSpec.None, bias: true);
        s = Act(s, act, "act");
        s = Conv(s, expandName, x.Channels, 1, 1, PadSpec.None, bias: true);
        s = Add(gate, "gate", s);
        return Add(new BinaryOp(BinaryKind.Mul), "scale", x, s);
    }

    /// <summary>Batch normalisation.</summary>
    public Sym BatchNorm(Sym x, string name, double eps = 1e-5, double momentum = 0.1) =>
        Add(new BatchNormOp(x.Channels, eps, momentum), name, x);

    /// <summary>Group normalisation.</summary>
    public Sym GroupNorm(Sym x, string name, int groups, double eps = 1e-5) =>
        Add(new GroupNormOp(groups, x.Channels, eps), name, x);

    /// <summary>An activation.</summary>
    public Sym Act(Sym x, ActivationKind kind, string? name = null, double alpha = 0, double beta = 0) =>
        Add(new ActivationOp(kind, alpha, beta), name, x);

    /// <summary>ReLU.</summary>
    public Sym Relu(Sym x, string? name = null) => Act(x, ActivationKind.Relu, name);

    /// <summary>ReLU6.</summary>
    public Sym Relu6(Sym x, string? name = null) => Act(x, ActivationKind.Relu6, name);

    /// <summary>Max pooling.</summary>
    public Sym MaxPool(Sym x, Size2 kernel, Size2 stride, PadSpec? padding = null, bool ceilMode = false, string? name = null) =>
        Add(new Pool2dOp(PoolKind.Max, kernel, stride, padding ?? PadSpec.None, ceilMode), name, x);

    /// <summary>Average pooling.</summary>
    public Sym AvgPool(Sym x, Size2 kernel, Size2 stride, PadSpec? padding = null, bool ceilMode = false,
        bool countIncludePad = true, string? name = null) =>
        Add(new Pool2dOp(PoolKind.Avg, kernel, stride, padding ?? PadSpec.None, ceilMode, countIncludePad), name, x);

    /// <summary>Global average (or max) pooling, flattened to [N, C] unless keepDims.</summary>
    public Sym GlobalPool(Sym x, PoolKind pool = PoolKind.Avg, bool keepDims = false, string? name = null) =>
        Add(new GlobalPoolOp(pool, keepDims), name, x);

    /// <summary>Sum of inputs.</summary>
    public Sym Sum(params Sym[] xs) => Add(new BinaryOp(BinaryKind.Add), null, xs);

    /// <summary>Sum of inputs, named.</summary>
    public Sym Sum(string name, params Sym[] xs) => Add(new BinaryOp(BinaryKind.Add), name, xs);

    /// <summary>Multiplication by a constant.</summary>
    public Sym Scale(Sym x, double scale, string? name = null) => Add(new ScaleOp(scale), name, x);

    /// <summary>Channel concatenation.</summary>
    public Sym Concat(params Sym[] xs) => Add(new ConcatOp(1), null, xs);

    /// <summary>Channel concatenation, named.</summary>
    public Sym Concat(string name, params Sym[] xs) => Add(new ConcatOp(1), name, xs);

    /// <summary>Flatten from dimension 1.</summary>
    public Sym Flatten(Sym x, string? name = null) => Add(new FlattenOp(1), name, x);

    /// <summary>Fully connected layer.</summary>
    public Sym Linear(Sym x, string name, int outFeatures, bool bias = true) =>
        Add(new LinearOp((int)x.Shape[^1], outFeatures, bias), name, x);

    /// <summary>Dropout.</summary>
    public Sym Dropout(Sym x, double p, string? name = null) => Add(new DropoutOp(p), name, x);

    /// <summary>Explicit padding of the spatial dimensions.</summary>
    public Sym Pad(Sym x, int top, int left, int bottom, int right, string? name = null) =>
        Add(new PadOp(top, left, bottom, right), name, x);

    /// <summary>Marks the last feature map (pooled features and feature extraction read it).</summary>
    public void Features(Sym x) => _features = x.Name;

    /// <summary>Declares the classifier on the pre-logits <paramref name="preLogits"/>: a linear layer named
    /// <paramref name="classifierName"/> (the reference's module path) with <paramref name="numClasses"/> outputs, made by
    /// <see cref="ModelGraph.WithClassifier"/> when the graph is built; none when <paramref name="numClasses"/> is 0.
    /// Returns the pre-logits, which stay the output until then. <paramref name="weightAs1x1Conv"/> keeps the weight in
    /// the [out, in, 1, 1] layout of heads that apply a 1×1 convolution to the pooled map (timm's ResNetV2).</summary>
    public Sym Head(Sym preLogits, int numClasses, string classifierName, bool weightAs1x1Conv = false)
    {
        _head = (numClasses, classifierName, weightAs1x1Conv);
        return preLogits;
    }

    private (int NumClasses, string Name, bool WeightAs1x1Conv)? _head;

    /// <summary>Marks a training-only extra output.</summary>
    public void AuxOutput(Sym x) => _aux.Add(x.Name);

    /// <summary>Registers the parameters of <paramref name="node"/> (a full node name or module-path prefix)
    /// before those of <paramref name="before"/>, where the reference declares modules in another order
    /// than they run (timm's ResNetV2 creates `downsample` before `norm1`, though it reads norm1's output).</summary>
    public void RegisterBefore(string node, string before) => _registerBefore.Add((node, before));

    private readonly List<(string Node, string Before)> _registerBefore = [];

    private IReadOnlyList<string>? RegistrationOrder()
    {
        if (_registerBefore.Count == 0) return null;
        var order = _nodes.Select(n => n.Name).ToList();
        static bool Under(string name, string prefix) => name == prefix || name.StartsWith(prefix + ".", StringComparison.Ordinal);
        foreach (var (node, before) in _registerBefore)
        {
            var moving = order.Where(n => Under(n, node)).ToList();
            if (moving.Count == 0) throw new GraphException($"graph '{_name}': RegisterBefore names '{node}', which has no nodes");
            order.RemoveAll(n => Under(n, node));
            int at = order.FindIndex(n => Under(n, before));
            if (at < 0) throw new GraphException($"graph '{_name}': RegisterBefore names '{before}', which has no nodes");
            order.InsertRange(at, moving);
        }
        return order;
    }

    /// <summary>Declares a layer group (node-name prefixes, unscoped), from input side to head.</summary>
    public void Group(string name, params string[] prefixes) => _groups.Add(new LayerGroup(name, prefixes));

    /// <summary>Finishes the graph with the given output.</summary>
    public ModelGraph Build(Sym output)
    {
        var graph = new ModelGraph(_name, _inputShape, _nodes.ToArray(), output.Name, _features, null, _groups.ToArray(), _aux.ToArray(),
            _inputType, _extraInputs.ToArray())
        {
            RegistrationOrder = RegistrationOrder(),
        };
        return _head is { NumClasses: > 0 } h ? graph.WithClassifier(h.NumClasses, name: h.Name, weightAs1x1Conv: h.WeightAs1x1Conv) : graph;
    }
}
