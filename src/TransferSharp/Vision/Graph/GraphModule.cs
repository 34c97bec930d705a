using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>What BatchNorm layers do when the model is in training mode.</summary>
public enum BatchNormMode
{
    /// <summary>BatchNorm layers whose parameters are frozen stay in eval mode (running statistics
    /// used and not updated); unfrozen ones train. The default, and what "frozen" should mean.</summary>
    FollowFreeze,
    /// <summary>Every BatchNorm layer follows the model's mode (PyTorch's behaviour: a frozen layer
    /// still updates its statistics in training mode).</summary>
    Train,
    /// <summary>Every BatchNorm layer stays in eval mode, even when unfrozen.</summary>
    Eval,
}

/// <summary>
/// Runs a <see cref="ModelGraph"/> on TorchSharp with autograd. Parameters are registered under the
/// node names, so <c>state_dict()</c> keys equal the reference implementation's. Offers what
/// transfer learning needs: pooled features, feature taps at any node, a replaceable classifier,
/// layer groups to freeze, an explicit BatchNorm policy, and a summary.
/// </summary>
public sealed class GraphModule : nn.Module<Tensor, Tensor>
{
    private ModelGraph _graph;
    private Layer[] _layers;
    private readonly Dictionary<string, nn.Module> _containers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Plan> _plans = new(StringComparer.Ordinal);
    private readonly object _planLock = new();
    private BatchNormMode _bnMode = BatchNormMode.FollowFreeze;
    private readonly Generator _ownGenerator;
    private Generator _generator;

    /// <summary>
    /// Instantiates the graph with fresh parameters drawn, node by node, from a generator of its own seeded with
    /// <paramref name="seed"/>: the same seed gives the same weights in any process, and LibTorch's global generator
    /// (the host's) is neither read nor reseeded.
    /// </summary>
    public GraphModule(ModelGraph graph, long seed = 0) : base(graph.Name)
    {
        _graph = graph;
        _layers = graph.Nodes.Select(n => n.Op.CreateLayer()).ToArray();
        var order = graph.RegistrationOrder ?? graph.Nodes.Select(n => n.Name).ToArray();
        foreach (var name in order) Attach(name, _layers[graph.IndexOf(name)]);
        _ownGenerator = _generator = new Generator(unchecked((ulong)seed));
        foreach (var layer in _layers) layer.ResetParameters(_generator);
        Generator = _ownGenerator;
    }

    /// <summary>
    /// The generator this module draws from: the parameters of a new classifier (<see cref="ResetClassifier"/>) and
    /// dropout masks in training mode. It starts as the module's own (seeded at construction and disposed with it); a
    /// training run sets one it owns for the run and puts the previous one back. Setting null restores the module's own.
    /// </summary>
    [AllowNull]
    public Generator Generator
    {
        get => _generator;
        set
        {
            _generator = value ?? _ownGenerator;
            foreach (var masked in _layers.OfType<ISeededMaskLayer>()) masked.Generator = _generator;
        }
    }

    /// <summary>The graph this module runs.</summary>
    public ModelGraph Graph => _graph;

    /// <summary>Size of pooled features (channels of the last feature map, or width of the pooled tokens).</summary>
    public int NumFeatures => _graph.NumFeatures;

    /// <summary>Number of classes of the classifier, 0 when headless.</summary>
    public int NumClasses => _graph.NumClasses;

    /// <summary>The layer executing a node.</summary>
    public Layer LayerOf(string node) => _layers[_graph.IndexOf(node)];

    /// <summary>Names of the layer groups, from the input side to the head.</summary>
    public IReadOnlyList<string> GroupNames => _graph.Groups.Select(g => g.Name).ToArray();

    private static bool HasState(Layer layer) => layer.named_parameters().Any() || layer.named_buffers().Any();

    private void Attach(string path, Layer layer)
    {
        if (!HasState(layer)) return;
        var segments = path.Split('.');
        // A tensor named by its node (timm's cls_token) is the parent's parameter, not a child module's.
        var nodeTensor = layer.NodeTensor;
        nn.Module parent = this;
        string prefix = "";
        for (int s = 0; s < segments.Length - 1; s++)
        {
            prefix = prefix.Length == 0 ? segments[s] : prefix + "." + segments[s];
            if (!_containers.TryGetValue(prefix, out var container))
            {
                container = new Container(segments[s]);
                Register(parent, segments[s], container);
                _containers[prefix] = container;
            }
            parent = container;
        }
        if (nodeTensor is not null)
        {
            parent.register_parameter(segments[^1], nodeTensor);
            _nodeTensors[path] = parent;
            return;
        }
        // Nodes nested under this one that came first (ConvNeXt's conv_dw before its block's gamma) become its children,
        // listed after its own tensors as PyTorch lists a module's.
        if (_containers.TryGetValue(path, out var earlier) && earlier is Container holder)
        {
            foreach (var (name, child) in holder.named_children().ToList()) layer.SetChild(name, child);
        }
        Register(parent, segments[^1], layer);
        _containers[path] = layer;
    }

    // Nodes whose tensor is registered on a parent module (see Layer.NodeTensor), with that parent.
    private readonly Dictionary<string, nn.Module> _nodeTensors = new(StringComparer.Ordinal);

    private void Register(nn.Module parent, string name, nn.Module child)
    {
        switch (parent)
        {
            case GraphModule: SetChild(name, child); break;
            case Container c: c.SetChild(name, child); break;
            case Layer l: l.SetChild(name, child); break;
        }
    }

    private void Detach(string path)
    {
        if (_nodeTensors.Remove(path, out var owner))
        {
            var segment = path[(path.LastIndexOf('.') + 1)..];
            switch (owner)
            {
                case GraphModule: _internal_params.Remove(segment); break;
                case Container c: c.RemoveParameter(segment); break;
                case Layer l: l.RemoveParameter(segment); break;
            }
            return;
        }
        if (!_containers.Remove(path)) return;
        int dot = path.LastIndexOf('.');
        var name = path[(dot + 1)..];
        nn.Module parent = dot < 0 ? this : _containers[path[..dot]];
        switch (parent)
        {
            case GraphModule: if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name); break;
            case Container c: c.RemoveChild(name); break;
            case Layer l: l.RemoveChild(name); break;
        }
    }

    private void SetChild(string name, nn.Module child)
    {
        if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name);
        register_module(name, child);
    }

    /// <summary>A module that only holds children, to build the dotted module paths.</summary>
    private sealed class Container : nn.Module
    {
        public Container(string name) : base(name) { }

        public void SetChild(string name, nn.Module child)
        {
            if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name);
            register_module(name, child);
        }

        public void RemoveChild(string name) { if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name); }

        public void RemoveParameter(string name) => _internal_params.Remove(name);
    }

    // ---------------------------------------------------------------- execution

    private sealed record Plan(int[] Order, int[][] Sources, int[] LastUse, bool[] Keep, bool[] Fresh, int[] OutputIndex, Dictionary<int, int> FeedSlot);

    private Plan GetPlan(IReadOnlyCollection<string> feeds, IReadOnlyList<string> outputs)
    {
        var key = string.Join(",", feeds) + "|" + string.Join(",", outputs);
        lock (_planLock)
        {
            if (_plans.TryGetValue(key, out var cached)) return cached;
            var g = _graph;
            var fed = new HashSet<string>(feeds, StringComparer.Ordinal);
            // Walk back from the outputs, stopping at fed nodes.
            var need = new bool[g.Nodes.Count];
            var stack = new Stack<string>(outputs);
            while (stack.Count > 0)
            {
                var name = stack.Pop();
                if (fed.Contains(name)) continue;
                if (name == ModelGraph.InputName)
                    throw new GraphException($"graph '{g.Name}': the graph input is needed but not given");
                if (g.IsInput(name))
                    throw new GraphException($"graph '{g.Name}': input '{name}' is needed but not given");
                int i = g.IndexOf(name);
                if (need[i]) continue;
                need[i] = true;
                foreach (var input in g.Nodes[i].Inputs) stack.Push(input);
            }
            var order = Enumerable.Range(0, g.Nodes.Count).Where(i => need[i]).ToArray();
            // Slots: node i lives in slot i; feeds of nodes use their own slot; the graph input uses slot N, extra input k
            // slot N + 1 + k.
            int inputSlot = g.Nodes.Count;
            int SlotOf(string name)
            {
                if (name == ModelGraph.InputName) return inputSlot;
                for (int k = 0; k < g.ExtraInputs.Count; k++) if (g.ExtraInputs[k].Name == name) return inputSlot + 1 + k;
                return g.IndexOf(name);
            }
            int slots = g.Nodes.Count + 1 + g.ExtraInputs.Count;
            var feedSlot = new Dictionary<int, int>();
            int f = 0;
            foreach (var name in feeds) feedSlot[SlotOf(name)] = f++;
            var sources = new int[g.Nodes.Count][];
            var lastUse = Enumerable.Repeat(-1, slots).ToArray();
            for (int k = 0; k < order.Length; k++)
            {
                var node = g.Nodes[order[k]];
                sources[order[k]] = node.Inputs.Select(SlotOf).ToArray();
                foreach (var s in sources[order[k]]) lastUse[s] = k;
            }
            var keep = new bool[slots];
            var outputIndex = outputs.Select(SlotOf).ToArray();
            foreach (var o in outputIndex) keep[o] = true;
            foreach (var slot in feedSlot.Keys) keep[slot] = true; // caller-owned: never disposed or overwritten
            // Values with storage of their own (not views, not constants, not caller-owned feeds)
            // are the only ones an op may overwrite in place.
            var fresh = new bool[slots];
            foreach (var i in order) fresh[i] = !g.Nodes[i].Op.OutputMayAlias && !feedSlot.ContainsKey(i);
            var plan = new Plan(order, sources, lastUse, keep, fresh, outputIndex, feedSlot);
            _plans[key] = plan;
            return plan;
        }
    }

    /// <summary>
    /// Computes the named outputs from the given feeds (usually just "input"; a text encoder's token ids "input" with its
    /// extra inputs, such as "attention_mask" and "token_type_ids"). Only the nodes the
    /// outputs depend on run; every intermediate tensor is freed right after its last consumer.
    /// </summary>
    public Tensor[] Run(IReadOnlyDictionary<string, Tensor> feeds, IReadOnlyList<string> outputs)
    {
        var feedNames = feeds.Keys.ToArray();
        var plan = GetPlan(feedNames, outputs);
        var values = new Tensor?[_graph.Nodes.Count + 1 + _graph.ExtraInputs.Count];
        foreach (var (slot, f) in plan.FeedSlot) values[slot] = feeds[feedNames[f]];
        bool inference = !is_grad_enabled();
        using var scope = NewDisposeScope();
        var args = new List<Tensor>(4);
        for (int k = 0; k < plan.Order.Length; k++)
        {
            int i = plan.Order[k];
            var src = plan.Sources[i];
            var layer = _layers[i];
            args.Clear();
            foreach (var s in src) args.Add(values[s] ?? throw new InvalidOperationException($"value of slot {s} was freed early"));
            Tensor y;
            try
            {
                int target = inference && layer.CanRunInPlace ? InPlaceTarget(plan, k, src, args, layer.Commutative) : -1;
                y = target >= 0 ? layer.ForwardInPlace(args, target) : layer.Forward(args);
            }
            catch (ExternalException e)
            {
                var shapes = string.Join(" ", args.Select(a => "[" + string.Join(",", a.shape) + "]"));
                throw new GraphException($"graph '{_graph.Name}', node '{_graph.Nodes[i].Name}' ({layer.Op.Kind}) failed on input {shapes}: {e.Message.Split('\n')[0]}");
            }
            foreach (var a in args) if (ReferenceEquals(a, y)) { y = y.alias(); break; }
            values[i] = y;
            foreach (var s in src)
            {
                if (plan.LastUse[s] == k && !plan.Keep[s] && values[s] is { } dead)
                {
                    dead.Dispose();
                    values[s] = null;
                }
            }
        }
        var results = new Tensor[plan.OutputIndex.Length];
        for (int o = 0; o < results.Length; o++)
        {
            var v = values[plan.OutputIndex[o]]!;
            // A requested output may be a feed or appear twice: hand out distinct handles.
            results[o] = (plan.FeedSlot.ContainsKey(plan.OutputIndex[o]) || Array.IndexOf(plan.OutputIndex, plan.OutputIndex[o]) != o ? v.alias() : v)
                .MoveToOuterDisposeScope();
        }
        return results;
    }

    /// <summary>Which input (if any) the op may overwrite: read by no later node, not kept, read
    /// only once here, and already of the output's shape and dtype.</summary>
    private static int InPlaceTarget(Plan plan, int step, int[] src, List<Tensor> args, bool commutative)
    {
        int candidates = commutative ? src.Length : 1;
        for (int t = 0; t < candidates; t++)
        {
            int slot = src[t];
            if (!plan.Fresh[slot] || plan.LastUse[slot] != step || plan.Keep[slot] || Array.IndexOf(src, slot) != Array.LastIndexOf(src, slot)) continue;
            var shape = args[t].shape;
            bool fits = true;
            for (int j = 0; j < args.Count && fits; j++)
            {
                if (j == t) continue;
                var other = args[j].shape;
                fits = args[j].dtype == args[t].dtype && other.Length <= shape.Length
                    && other.Select((d, q) => d == 1 || d == shape[shape.Length - other.Length + q]).All(b => b);
            }
            if (fits) return t;
        }
        return -1;
    }

    /// <summary>Computes the named node outputs for an input batch.</summary>
    public Tensor[] Run(Tensor input, params string[] outputs) =>
        Run(new Dictionary<string, Tensor> { [ModelGraph.InputName] = input }, outputs);

    /// <summary>The model output (logits) for a batch [N, C, H, W].</summary>
    public override Tensor forward(Tensor input) => Run(input, _graph.Output)[0];

    /// <summary>
    /// The state dict in PyTorch's order: for each module, its parameters, then its buffers, then its
    /// children in registration order — the order of the reference's own <c>state_dict()</c>
    /// (TorchSharp's default lists all parameters before all buffers).
    /// </summary>
    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null)
    {
        destination ??= new Dictionary<string, Tensor>();
        // As a child module, TorchSharp passes the child's name without the separating dot.
        AddInReferenceOrder(this, string.IsNullOrEmpty(prefix) ? "" : prefix + ".", destination);
        return destination;
    }

    private static void AddInReferenceOrder(nn.Module module, string prefix, Dictionary<string, Tensor> destination)
    {
        foreach (var (name, p) in module.named_parameters(recurse: false)) destination[prefix + name] = p;
        foreach (var (name, b) in module.named_buffers(recurse: false, include_nonpersistent: false)) destination[prefix + name] = b;
        foreach (var (name, child) in module.named_children()) AddInReferenceOrder(child, prefix + name + ".", destination);
    }

    /// <summary>In training mode, the logits and the auxiliary outputs (Inception v3's AuxLogits);
    /// in eval mode the auxiliary list is empty.</summary>
    public (Tensor Logits, Tensor[] Aux) ForwardTrain(Tensor input)
    {
        if (!training || _graph.AuxOutputs.Count == 0) return (forward(input), []);
        var all = Run(input, [_graph.Output, .. _graph.AuxOutputs]);
        return (all[0], all[1..]);
    }

    /// <summary>The last feature map [N, F, h, w] or token sequence [N, T, F] (before pooling).</summary>
    public Tensor ForwardFeatures(Tensor input) => Run(input, FeatureNodeOrThrow)[0];

    /// <summary>Pooled features [N, NumFeatures]: global average (default) or max of the last feature map; of a token
    /// sequence, the model's own token pooling (ViT's class token after the final norm, timm's pre-logits) by default
    /// (see <see cref="ModelGraph.FeaturePooling"/>).</summary>
    public Tensor PooledFeatures(Tensor input, PoolKind pool = PoolKind.Avg) => Pool(input, _graph.FeaturePooling(pool));

    /// <summary>Pooled features of a token sequence by a named token pooling (DINOv2's linear probes read
    /// <see cref="TokenPoolKind.ClassAndMean"/>), whatever pooling the model's head uses.</summary>
    public Tensor PooledFeatures(Tensor input, TokenPoolKind tokens)
    {
        var own = _graph.TokenPoolNode is { } p ? (TokenPoolOp)_graph.Node(p).Op : null;
        if (_graph.FeatureNode is { } f && _graph.Shapes[f].Length != 3)
            throw new GraphException($"graph '{_graph.Name}': its features are a feature map, not a token sequence, so they have no token pooling");
        return Pool(input, new TokenPoolOp(tokens, own?.PrefixTokens ?? 0));
    }

    private Tensor Pool(Tensor input, Op pooling)
    {
        using var features = ForwardFeatures(input);
        using var layer = pooling.CreateLayer();
        return layer.Forward([features]);
    }

    /// <summary>The head: from a feature map or token sequence (as <see cref="ForwardFeatures"/> returns) to the output.</summary>
    public Tensor ForwardHead(Tensor featureMap) =>
        Run(new Dictionary<string, Tensor> { [FeatureNodeOrThrow] = featureMap }, [_graph.Output])[0];

    /// <summary>Outputs of any named nodes (feature taps), computed in one pass.</summary>
    public Dictionary<string, Tensor> Taps(Tensor input, params string[] nodes)
    {
        var values = Run(input, nodes);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Length; i++)
        {
            if (!result.TryAdd(nodes[i], values[i])) values[i].Dispose();
        }
        return result;
    }

    private string FeatureNodeOrThrow => _graph.FeatureNode
        ?? throw new GraphException($"graph '{_graph.Name}' marks no feature node; use Taps with a node name");

    // ---------------------------------------------------------------- head

    /// <summary>
    /// Puts a new classifier of <paramref name="numClasses"/> outputs on the model, its parameters drawn from
    /// <see cref="Generator"/> (the graph's <see cref="ModelGraph.WithClassifier"/>: the reference's names kept); 0 removes it, so the output becomes the
    /// pre-logits features. Every other layer keeps its weights.
    /// </summary>
    public void ResetClassifier(int numClasses, HeadSpec? head = null) => Adopt(_graph.WithClassifier(numClasses, head));

    /// <summary>The parameters a head trained on cached pre-logits trains (see <see cref="ModelGraph.HeadNodes"/>).</summary>
    public IReadOnlyList<(string Name, Tensor Parameter)> HeadParameters() =>
        named_parameters().Where(p => _graph.IsHeadTensor(p.name)).Select(p => (p.name, (Tensor)p.parameter)).ToArray();

    /// <summary>Runs <paramref name="graph"/> from now on: layers of nodes it keeps unchanged (same name, same op) stay with
    /// their weights; the others, and the nodes in <paramref name="renew"/>, are created fresh (on this module's device and
    /// mode) or dropped. Training uses it to turn a loaded model into the architecture it trains without copying a weight.
    /// Fresh layers draw their parameters from <paramref name="generator"/> (null: <see cref="Generator"/>).</summary>
    internal void Adopt(ModelGraph graph, IReadOnlyCollection<string>? renew = null, Generator? generator = null)
    {
        var device = parameters().FirstOrDefault()?.device;
        var old = _graph;
        var layers = new Layer[graph.Nodes.Count];
        var kept = new HashSet<int>();
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            if (old.HasNode(node.Name) && old.Node(node.Name).Op.Equals(node.Op) && renew?.Contains(node.Name) != true)
            {
                int j = old.IndexOf(node.Name);
                layers[i] = _layers[j];
                kept.Add(j);
                continue;
            }
            var layer = node.Op.CreateLayer();
            layer.ResetParameters(generator ?? _generator);
            if (layer is ISeededMaskLayer masked) masked.Generator = _generator;
            if (device is not null && device.type != DeviceType.CPU) layer.to(device);
            layer.train(training);
            layers[i] = layer;
        }
        for (int j = 0; j < old.Nodes.Count; j++)
        {
            if (kept.Contains(j)) continue;
            Detach(old.Nodes[j].Name);
            _layers[j].Dispose();
        }
        for (int i = 0; i < graph.Nodes.Count; i++)
            if (!old.HasNode(graph.Nodes[i].Name) || !ReferenceEquals(layers[i], _layers[old.IndexOf(graph.Nodes[i].Name)])) Attach(graph.Nodes[i].Name, layers[i]);
        _layers = layers;
        _graph = graph;
        lock (_planLock) _plans.Clear();
        train(training);
    }

    // ---------------------------------------------------------------- freezing and modes

    /// <summary>What BatchNorm layers do in training mode; see <see cref="Graph.BatchNormMode"/>.</summary>
    public BatchNormMode BatchNormMode
    {
        get => _bnMode;
        set { _bnMode = value; train(training); }
    }

    /// <summary>Sets training or eval mode, then applies <see cref="BatchNormMode"/>.</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        foreach (var layer in _layers)
        {
            bool mode = train;
            if (train && layer is BatchNormLayer bn)
            {
                mode = _bnMode switch
                {
                    BatchNormMode.Eval => false,
                    BatchNormMode.Train => true,
                    _ => bn.parameters().Any(p => p.requires_grad),
                };
            }
            layer.train(mode);
        }
    }

    /// <summary>Freezes (no gradients) the named layer groups; all of them when none is named.</summary>
    public void Freeze(params string[] groups) => SetTrainable(groups, false);

    /// <summary>Unfreezes the named layer groups; all of them when none is named.</summary>
    public void Unfreeze(params string[] groups) => SetTrainable(groups, true);

    /// <summary>Freezes everything, then unfreezes the top <paramref name="count"/> groups (the head counts as one).</summary>
    public void UnfreezeTop(int count)
    {
        var names = GroupNames;
        if (count < 0 || count > names.Count)
            throw new InvalidOptionException(nameof(count), $"model '{_graph.Name}' has {names.Count} layer groups ({string.Join(", ", names)}); cannot unfreeze the top {count}");
        Freeze();
        Unfreeze(names.Skip(names.Count - count).ToArray());
    }

    /// <summary>Freezes everything below the named group and unfreezes it and everything above.</summary>
    public void UnfreezeFrom(string group)
    {
        var names = GroupNames.ToList();
        int i = names.FindIndex(n => string.Equals(n, group, StringComparison.OrdinalIgnoreCase));
        if (i < 0) throw new InvalidOptionException(nameof(group), $"model '{_graph.Name}' has no layer group '{group}'; groups: {string.Join(", ", names)}");
        UnfreezeTop(names.Count - i);
    }

    private void SetTrainable(string[] groups, bool trainable)
    {
        var selected = new List<LayerGroup>();
        foreach (var name in groups)
        {
            var g = _graph.Groups.FirstOrDefault(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new InvalidOptionException("group", $"model '{_graph.Name}' has no layer group '{name}'; groups: {string.Join(", ", GroupNames)}");
            selected.Add(g);
        }
        foreach (var (name, p) in named_parameters())
        {
            if (groups.Length == 0 || selected.Contains(_graph.GroupOf(name)!)) p.requires_grad = trainable;
        }
        train(training);
    }

    /// <summary>The trainable and frozen state of each group.</summary>
    public IReadOnlyList<(string Group, long Trainable, long Frozen)> GroupState()
    {
        var stats = _graph.Groups.Select(g => g.Name).ToDictionary(n => n, _ => (T: 0L, F: 0L));
        foreach (var (name, p) in named_parameters())
        {
            var g = _graph.GroupOf(name)?.Name;
            if (g is null) continue;
            var s = stats[g];
            stats[g] = p.requires_grad ? (s.T + p.numel(), s.F) : (s.T, s.F + p.numel());
        }
        return _graph.Groups.Select(g => (g.Name, stats[g.Name].T, stats[g.Name].F)).ToArray();
    }

    /// <summary>Number of parameters (trainable and frozen).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Layers, output shapes, parameter counts and MACs, for an input of the given [N, C, H, W] (default: native size, batch 1).</summary>
    public ModelSummary Summary(long[]? inputShape = null) => ModelSummary.Of(this, inputShape ?? _graph.InputShape);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var l in _layers) l.Dispose();
            _ownGenerator.Dispose();
        }
        base.Dispose(disposing);
    }
}
