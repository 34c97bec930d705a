using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>
/// Copies a state dict into a <see cref="GraphModule"/>, the way PyTorch's <c>load_state_dict</c> does,
/// plus what transfer learning needs: known renames (DataParallel's <c>module.</c>, torchvision's legacy
/// DenseNet names, timm's VGG head), dtype conversion to the model's, first-convolution adaptation to
/// another number of input channels (timm's <c>adapt_input_conv</c>), and a classifier of another size
/// left initialised. Strict loading checks everything first and copies nothing when a key is missing,
/// unexpected or mis-shaped; the exception names them.
/// </summary>
public static class StateDictLoader
{
    private const string BatchCountSuffix = ".num_batches_tracked";

    /// <summary>Loads <paramref name="state"/> into <paramref name="model"/>.</summary>
    /// <param name="model">The model; its parameters are overwritten in place.</param>
    /// <param name="state">Named tensors (any dtype, CPU or the model's device).</param>
    /// <param name="strict">When true (the default), a missing, unexpected or mis-shaped key is an
    /// error and nothing is loaded; when false, what matches is loaded and the report says the rest.</param>
    /// <param name="source">Where the state came from, for messages.</param>
    /// <exception cref="StateDictMismatchException">Strict loading found problems (listed by name).</exception>
    public static LoadReport Load(GraphModule model, IReadOnlyDictionary<string, Tensor> state, bool strict = true, string? source = null)
    {
        var graph = model.Graph;
        var target = model.state_dict();
        var reference = ReferenceGraph(graph);
        bool Known(string key) => target.ContainsKey(key) || (reference is not null && NodeOf(key) is { } n && reference.HasNode(n));

        // 1. Map checkpoint names to model names.
        var mapped = new Dictionary<string, (string From, Tensor Tensor, KeyRemap.Reshape Reshape)>(StringComparer.Ordinal);
        var renamed = new List<(string, string)>();
        var unexpected = new List<string>();
        var dropped = new List<string>();
        foreach (var (key, tensor) in state)
        {
            var m = KeyRemap.Map(key, Known);
            if (m.ModelKey != key) renamed.Add((key, m.ModelKey));
            if (!target.ContainsKey(m.ModelKey))
            {
                if (IsDroppableHead(m.ModelKey, graph, reference)) dropped.Add(key);
                else unexpected.Add(key);
                continue;
            }
            if (!mapped.TryAdd(m.ModelKey, (key, tensor, m.Reshape))) unexpected.Add(key);
        }

        // 2. Compare with the model, key by key.
        var headKeys = HeadNodes(graph);
        var auxNodes = AuxOnlyNodes(graph);
        bool checkpointHasAux = mapped.Keys.Any(k => NodeOf(k) is { } n && auxNodes.Contains(n));
        var stemConvs = StemConvolutions(graph);
        var copies = new List<(string Key, Tensor Source, KeyRemap.Reshape Reshape)>();
        var adapt = new List<(string Key, Tensor Source)>();
        var missing = new List<string>();
        var misShaped = new List<ShapeMismatch>();
        var reinitialised = new List<string>();
        var resetCounters = new List<string>();
        foreach (var (key, dst) in target)
        {
            var node = NodeOf(key);
            if (!mapped.TryGetValue(key, out var src))
            {
                if (key.EndsWith(BatchCountSuffix, StringComparison.Ordinal)) resetCounters.Add(key); // absent before PyTorch 0.4.1
                else if (node is not null && auxNodes.Contains(node) && !checkpointHasAux) reinitialised.Add(key);
                else missing.Add(key);
                continue;
            }
            var srcShape = src.Tensor.shape;
            if (srcShape.SequenceEqual(dst.shape)) copies.Add((key, src.Tensor, KeyRemap.Reshape.None));
            else if (src.Reshape == KeyRemap.Reshape.ToModelShape && src.Tensor.numel() == dst.numel()) copies.Add((key, src.Tensor, src.Reshape));
            else if (node is not null && stemConvs.Contains(node) && key == node + ".weight" && CanAdapt(srcShape, dst.shape)) adapt.Add((key, src.Tensor));
            else if (node is not null && headKeys.Contains(node) && srcShape.Length == dst.shape.Length && srcShape[0] != dst.shape[0]) reinitialised.Add(key);
            else misShaped.Add(new ShapeMismatch(key, dst.shape, srcShape));
        }
        // A classifier whose weight was left initialised must not keep the checkpoint's bias (or vice versa).
        foreach (var node in headKeys)
        {
            if (reinitialised.Any(k => NodeOf(k) == node))
            {
                foreach (var c in copies.Where(c => NodeOf(c.Key) == node).ToList())
                {
                    copies.Remove(c);
                    reinitialised.Add(c.Key);
                }
            }
        }

        var report = new LoadReport
        {
            Model = graph.Name,
            Loaded = [.. copies.Select(c => c.Key), .. adapt.Select(a => a.Key)],
            Missing = missing,
            Unexpected = unexpected,
            MisShaped = misShaped,
            Reinitialised = reinitialised,
            Adapted = adapt.Select(a => a.Key).ToList(),
            Dropped = dropped,
            Renamed = renamed,
            HeadLoaded = graph.ClassifierNode is { } cls && copies.Any(c => NodeOf(c.Key) == cls),
        };
        if (strict && !report.IsExact) throw new StateDictMismatchException(source ?? "the state dict", report);

        // 3. Copy (dtype and device conversion happen in copy_).
        using (no_grad())
        {
            foreach (var (key, src, reshape) in copies)
            {
                using var scope = NewDisposeScope();
                var dst = target[key];
                dst.copy_(reshape == KeyRemap.Reshape.ToModelShape ? src.reshape(dst.shape) : src);
            }
            foreach (var (key, src) in adapt)
            {
                using var scope = NewDisposeScope();
                var dst = target[key];
                dst.copy_(AdaptInputConv(src, (int)dst.shape[1]));
            }
            foreach (var key in resetCounters) target[key].zero_();
        }
        return report;
    }

    /// <summary>
    /// timm's <c>adapt_input_conv</c>: a kernel trained on RGB, for <paramref name="inChannels"/> inputs.
    /// One channel: the sum over RGB (a gray image then gives what RGB = gray gave). N channels: RGB
    /// repeated to N and scaled by 3/N, so the expected activation keeps its size.
    /// </summary>
    public static Tensor AdaptInputConv(Tensor rgbWeight, int inChannels)
    {
        if (rgbWeight.dim() != 4 || rgbWeight.shape[1] != 3)
            throw new ArgumentException($"expected a [out, 3, kh, kw] kernel, got [{string.Join(", ", rgbWeight.shape)}]", nameof(rgbWeight));
        if (inChannels < 1) throw new ArgumentOutOfRangeException(nameof(inChannels));
        using var scope = NewDisposeScope();
        var w = rgbWeight.to_type(ScalarType.Float32);
        Tensor result;
        if (inChannels == 1) result = w.sum(1, keepdim: true);
        else if (inChannels == 3) result = w.clone();
        else
        {
            long repeat = (inChannels + 2) / 3;
            result = w.repeat(1, repeat, 1, 1).narrow(1, 0, inChannels) * (3.0 / inChannels);
        }
        return result.to_type(rgbWeight.dtype).MoveToOuterDisposeScope();
    }

    private static bool CanAdapt(long[] src, long[] dst) =>
        src.Length == 4 && dst.Length == 4 && src[1] == 3 && dst[1] != 3 && src[0] == dst[0] && src[2] == dst[2] && src[3] == dst[3];

    private static string? NodeOf(string key)
    {
        int dot = key.LastIndexOf('.');
        return dot < 0 ? null : key[..dot];
    }

    /// <summary>The zoo's default build of the same architecture, to recognise head keys the model was built without.</summary>
    private static ModelGraph? ReferenceGraph(ModelGraph graph)
    {
        if (!ModelZoo.Contains(graph.Name)) return null;
        try
        {
            return ModelZoo.Get(graph.Name).Build(new ModelOptions());
        }
        catch (GraphException)
        {
            return null;
        }
    }

    /// <summary>Nodes whose size follows the number of classes: the classifier and the auxiliary classifiers.</summary>
    private static HashSet<string> HeadNodes(ModelGraph graph)
    {
        var heads = new HashSet<string>(StringComparer.Ordinal);
        if (graph.ClassifierNode is { } c) heads.Add(c);
        foreach (var aux in AuxOnlyNodes(graph))
        {
            if (graph.Node(aux).Op is LinearOp l && l.OutFeatures == graph.NumClasses) heads.Add(aux);
        }
        return heads;
    }

    /// <summary>Nodes computed only for the auxiliary outputs (Inception v3's AuxLogits).</summary>
    private static HashSet<string> AuxOnlyNodes(ModelGraph graph)
    {
        if (graph.AuxOutputs.Count == 0) return [];
        var main = graph.Needed([graph.Output]).ToHashSet();
        return graph.Needed(graph.AuxOutputs).Where(i => !main.Contains(i)).Select(i => graph.Nodes[i].Name).ToHashSet(StringComparer.Ordinal);
    }

    private static bool IsDroppableHead(string key, ModelGraph graph, ModelGraph? reference)
    {
        if (reference is null || NodeOf(key) is not { } node || graph.HasNode(node) || !reference.HasNode(node)) return false;
        return node == reference.ClassifierNode || AuxOnlyNodes(reference).Contains(node);
    }

    /// <summary>Convolutions that read the image directly (through parameter-free ops only).</summary>
    private static HashSet<string> StemConvolutions(ModelGraph graph)
    {
        var raw = new HashSet<string>(StringComparer.Ordinal) { ModelGraph.InputName };
        var stems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            if (n.Inputs.Count == 0 || !n.Inputs.All(raw.Contains)) continue;
            if (n.Op is Conv2dOp conv && conv.InChannels == graph.InChannels) stems.Add(n.Name);
            else if (n.Op is PadOp or IdentityOp or ScaleOp or DropoutOp or SliceOp) raw.Add(n.Name);
        }
        return stems;
    }
}
