using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>
/// Loads a state dict into a <see cref="GraphModule"/> through the one state loader, plugging in what
/// transfer learning needs and only the zoo knows: known renames (DataParallel's <c>module.</c>, torchvision's
/// legacy DenseNet names, timm's VGG head), first-convolution adaptation to another number of input channels
/// (timm's <c>adapt_input_conv</c>), a classifier of another size left initialised, and head keys of a part
/// the model was built without dropped. Under <see cref="LoadPolicy.Strict"/> (the default) everything is
/// checked first and nothing is copied when a key is missing, unexpected or mis-shaped; the exception names them.
/// </summary>
public static class StateDictLoader
{
    /// <summary>Loads <paramref name="state"/> into <paramref name="model"/>.</summary>
    /// <param name="model">The model; its parameters are overwritten in place.</param>
    /// <param name="state">Named tensors (any dtype, CPU or the model's device).</param>
    /// <param name="policy">Strict (the default): a missing, unexpected or mis-shaped key is an error and nothing is
    /// loaded. Lenient: what matches is loaded and the report says the rest. Exact: no mapping at all.</param>
    /// <param name="source">Where the state came from, for messages.</param>
    /// <exception cref="StateDictMismatchException">Exact or strict loading found problems (listed by name).</exception>
    public static LoadReport Load(GraphModule model, IReadOnlyDictionary<string, Tensor> state, LoadPolicy policy = LoadPolicy.Strict, string? source = null) =>
        StateLoader.Load(model, state, policy, source ?? "the state dict", policy == LoadPolicy.Exact ? null : new ZooMapping(model));

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

}

/// <summary>The zoo-aware part of <see cref="StateDictLoader"/>: names, heads and stems of the model's architecture.</summary>
internal sealed class ZooMapping : StateMapping
{
    private readonly ModelGraph _graph;
    private readonly Dictionary<string, Tensor> _target;
    private readonly ModelGraph? _reference;
    private readonly HashSet<string> _headNodes, _auxNodes, _stemConvs;

    public ZooMapping(GraphModule model)
    {
        _graph = model.Graph;
        _target = model.state_dict();
        _reference = ReferenceGraph(_graph);
        _headNodes = HeadNodes(_graph);
        _auxNodes = AuxOnlyNodes(_graph);
        _stemConvs = StemConvolutions(_graph);
    }

    public override (string Key, bool Reshape)? Map(string sourceKey)
    {
        var m = KeyRemap.Map(sourceKey, Known);
        if (!_target.ContainsKey(m.ModelKey) && IsDroppableHead(m.ModelKey)) return null;
        return (m.ModelKey, m.Reshape == KeyRemap.Reshape.ToModelShape);
    }

    public override bool KeepInitialised(string moduleKey, IReadOnlyCollection<string> mappedKeys)
    {
        if (StateLoader.NodeOf(moduleKey) is not { } node) return false;
        // A checkpoint without the auxiliary head (timm's Inception v3) leaves the model's initialised.
        if (_auxNodes.Contains(node) && !mappedKeys.Any(k => StateLoader.NodeOf(k) is { } n && _auxNodes.Contains(n))) return true;
        // A checkpoint without any classifier (a feature extractor such as resnet18_cntk's) leaves a new head initialised.
        return _headNodes.Contains(node) && !mappedKeys.Any(k => StateLoader.NodeOf(k) == node);
    }

    public override ShapeFit FitShape(string moduleKey, long[] sourceShape, long[] moduleShape)
    {
        var node = StateLoader.NodeOf(moduleKey);
        if (node is null) return ShapeFit.Mismatch;
        if (_stemConvs.Contains(node) && moduleKey == node + ".weight" && CanAdapt(sourceShape, moduleShape)) return ShapeFit.Adapt;
        if (IsImageConstant(moduleKey) && CanResample(sourceShape, moduleShape)) return ShapeFit.Adapt;
        // A classifier of another number of classes stays as initialised.
        if (_headNodes.Contains(node) && sourceShape.Length == moduleShape.Length && sourceShape[0] != moduleShape[0]) return ShapeFit.KeepInitialised;
        return ShapeFit.Mismatch;
    }

    public override Tensor Adapt(string moduleKey, Tensor source, long[] moduleShape) =>
        IsImageConstant(moduleKey) ? ResampleImageConstant(source, moduleShape) : StateDictLoader.AdaptInputConv(source, (int)moduleShape[1]);

    /// <summary>A constant the size of the input image (CNTK ResNet's mean image), in a model built for another input size:
    /// resampled as timm resamples position embeddings for another resolution (bilinear, antialiased when it shrinks).</summary>
    private bool IsImageConstant(string moduleKey) =>
        StateLoader.NodeOf(moduleKey) is { } node && moduleKey == node + ".value" && _graph.HasNode(node) && _graph.Node(node).Op is ConstantOp;

    private static bool CanResample(long[] src, long[] dst) =>
        src.Length == 4 && dst.Length == 4 && src[0] == dst[0] && src[1] == dst[1] && src[2] > 1 && src[3] > 1 && dst[2] > 1 && dst[3] > 1;

    private static Tensor ResampleImageConstant(Tensor source, long[] shape)
    {
        using var scope = NewDisposeScope();
        var x = source.to_type(ScalarType.Float32);
        bool shrinks = shape[2] < x.shape[2] || shape[3] < x.shape[3];
        var y = nn.functional.interpolate(x, size: [shape[2], shape[3]], mode: InterpolationMode.Bilinear, align_corners: false, antialias: shrinks);
        return y.to_type(source.dtype).MoveToOuterDisposeScope();
    }

    public override IEnumerable<string> Companions(string moduleKey) =>
        StateLoader.NodeOf(moduleKey) is { } node && _headNodes.Contains(node)
            ? _target.Keys.Where(k => StateLoader.NodeOf(k) == node)
            : [];

    private bool Known(string key) => _target.ContainsKey(key) || (_reference is not null && StateLoader.NodeOf(key) is { } n && _reference.HasNode(n));

    private static bool CanAdapt(long[] src, long[] dst) =>
        src.Length == 4 && dst.Length == 4 && src[1] == 3 && dst[1] != 3 && src[0] == dst[0] && src[2] == dst[2] && src[3] == dst[3];

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

    private bool IsDroppableHead(string key)
    {
        if (_reference is null || StateLoader.NodeOf(key) is not { } node || _graph.HasNode(node) || !_reference.HasNode(node)) return false;
        return node == _reference.ClassifierNode || AuxOnlyNodes(_reference).Contains(node);
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
