using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>Every op kind in Vision/Graph/Ops/ keeps its knowledge in one place: what it declares about its state is
/// what its layer holds, and what it writes as ONNX the importer reads back as the same computation.</summary>
[Trait("Category", "Graph")]
public sealed class OpCatalogTests
{
    /// <summary>One or more instances of every op kind, each with the shape of its inputs (which all read the same
    /// [1, 4, 6, 6] image, or a [1, 4, 6, 6] image's flattening where the op wants a matrix).</summary>
    internal static readonly (string Case, Op Op, int Inputs)[] Samples =
    [
        ("conv", new Conv2dOp(4, 8, new Size2(3, 3), new Size2(1, 1), PadSpec.Symmetric(1), new Size2(1, 1)), 1),
        ("conv_grouped_nobias", new Conv2dOp(4, 8, new Size2(3, 3), new Size2(2, 2), PadSpec.Symmetric(1), new Size2(1, 1), Groups: 2, Bias: false), 1),
        ("stdconv", new Conv2dOp(4, 8, new Size2(1, 1), new Size2(1, 1), PadSpec.None, new Size2(1, 1), WeightStandardizationEps: 1e-8), 1),
        ("convtranspose", new ConvTranspose2dOp(4, 2, new Size2(2, 2), new Size2(2, 2), PadSpec.None, new Size2(0, 0), new Size2(1, 1)), 1),
        ("batchnorm", new BatchNormOp(4), 1),
        ("groupnorm", new GroupNormOp(2, 4), 1),
        ("groupnorm_plain", new GroupNormOp(2, 4, Affine: false), 1),
        ("linear", new LinearOp(6, 3), 1),
        ("linear_1x1_nobias", new LinearOp(6, 3, Bias: false, WeightAs1x1Conv: true), 1),
        .. Enum.GetValues<ActivationKind>().Select(k => (k.ToString(), (Op)new ActivationOp(k, k == ActivationKind.Clip ? -0.5 : 0.2, k == ActivationKind.Clip ? 0.5 : 0.5), 1)),
        ("hardsigmoid_torch", ActivationOp.TorchHardSigmoid, 1),
        ("layernorm", new LayerNormOp(6), 1),
        ("layernorm_channels_first", new LayerNormOp(4, 1e-6, ChannelsFirst: true), 1),
        ("layernorm_plain", new LayerNormOp(6, Affine: false), 1),
        ("layerscale", new LayerScaleOp(6), 1),
        ("layerscale_channels_first", new LayerScaleOp(4, ChannelsFirst: true), 1),
        ("droppath", new DropPathOp(0.1), 1),
        ("softmax", new SoftmaxOp(1), 1),
        ("maxpool", new Pool2dOp(PoolKind.Max, new Size2(3, 3), new Size2(2, 2), PadSpec.Symmetric(1)), 1),
        ("avgpool", new Pool2dOp(PoolKind.Avg, new Size2(2, 2), new Size2(2, 2), PadSpec.None, CountIncludePad: false), 1),
        ("globalavg", new GlobalPoolOp(PoolKind.Avg), 1),
        ("globalmax_flat", new GlobalPoolOp(PoolKind.Max, KeepDims: false), 1),
        ("adaptive", new AdaptiveAvgPool2dOp(3, 3), 1),
        .. Enum.GetValues<BinaryKind>().Select(k => (k.ToString(), (Op)new BinaryOp(k), 2)),
        ("sum3", new BinaryOp(BinaryKind.Add), 3),
        ("scale", new ScaleOp(0.5, 1), 1),
        ("concat", new ConcatOp(1), 2),
        ("flatten", new FlattenOp(1), 1),
        ("reshape", new ReshapeOp([0, 4, -1]), 1),
        ("transpose", new TransposeOp([0, 2, 3, 1]), 1),
        ("slice", new SliceOp(2, 1, 5), 1),
        ("pad", new PadOp(1, 2, 1, 0, 0.5), 1),
        ("dropout", new DropoutOp(0.1), 1),
        ("identity", new IdentityOp(), 1),
        ("matmul", new MatMulOp(), 2),
        ("constant", new ConstantOp([1, 4, 6, 6]), 0),
        ("unsqueeze", new SqueezeOp([1], Unsqueeze: true), 1),
        .. Enum.GetValues<UnaryKind>().Select(k => (k.ToString(), (Op)new UnaryOp(k), 1)),
        ("reducemean", new ReduceOp(PoolKind.Avg, [2, 3]), 1),
        ("reducemax", new ReduceOp(PoolKind.Max, [1], KeepDims: false), 1),
        ("max", new ExtremumOp(true), 2),
        ("min", new ExtremumOp(false), 2),
        ("prelu_per_channel", new PReluOp([4, 1, 1]), 1),
        ("prelu_full", new PReluOp([4, 6, 6]), 1),
        ("resize_nearest_scales", new ResizeOp(ResizeMode.Nearest, ResizeCoordinates.Asymmetric, NearestRounding.Floor, [new ResizeAxis(2, 2, 0), new ResizeAxis(3, 2, 0)]), 1),
        ("resize_linear_sizes", new ResizeOp(ResizeMode.Linear, ResizeCoordinates.HalfPixel, NearestRounding.RoundPreferFloor, [new ResizeAxis(2, 0, 9), new ResizeAxis(3, 0, 4)]), 1),
        ("resize_linear_align_corners", new ResizeOp(ResizeMode.Linear, ResizeCoordinates.AlignCorners, NearestRounding.RoundPreferFloor, [new ResizeAxis(3, 1.5, 0)]), 1),
        ("resize_nearest_pytorch_half_pixel", new ResizeOp(ResizeMode.Nearest, ResizeCoordinates.PytorchHalfPixel, NearestRounding.RoundPreferCeil, [new ResizeAxis(1, 0.5, 0), new ResizeAxis(2, 0, 3)]), 1),
        ("tokens_prefix", new PrefixTokensOp(2, 4), 1),
        ("tokens_posembed", new PositionEmbeddingOp(4, 6, 6, PrefixTokens: 0), 2),
        ("tokens_posembed_resampled", new PositionEmbeddingOp(4, 3, 4, PrefixTokens: 0), 2),
        ("tokens_attention", new SelfAttentionOp(2), 1),
        .. Enum.GetValues<TokenPoolKind>().Select(k => ("tokens_pool_" + k, (Op)new TokenPoolOp(k, 1), 1)),
        ("ids_embedding", new EmbeddingOp(4, 3), 1),
        ("ids_positions", new EmbeddingOp(9, 3, Positions: true), 1),
        ("ids_cast", new CastOp(ElementType.Float32), 1),
    ];

    /// <summary>Samples named "ids_…" read token ids: an int64 main input [1, 5] of values below 4.</summary>
    private static bool ReadsIds(string name) => name.StartsWith("ids_", StringComparison.Ordinal);

    /// <summary>Samples of token ops (named "tokens_…") read the image as a token sequence, reshaped: [1, 36, 4] (its 6×6
    /// grid as 36 tokens of 4 channels; a second input is the image itself, as the patch grid), or [1, 12, 12] for
    /// attention, whose packed queries, keys and values need a width of 3 × heads × head width.</summary>
    private static long[]? TokenShape(string name) =>
        !name.StartsWith("tokens_", StringComparison.Ordinal) ? null : name == "tokens_attention" ? [0, 12, 12] : [0, 36, 4];

    /// <summary>A one-op graph: the op reads the image input <paramref name="inputs"/> times (an op of no inputs, a
    /// constant, is added to the input, since a graph whose output is a constant computes nothing).</summary>
    internal static ModelGraph OneOp(string name, Op op, int inputs)
    {
        var first = ModelGraph.InputName;
        List<Node> nodes = [];
        if (TokenShape(name) is { } tokens)
        {
            nodes.Add(new Node("tokens", new ReshapeOp(tokens), [ModelGraph.InputName]));
            first = "tokens";
        }
        nodes.Add(new Node("op", op, Enumerable.Range(0, inputs).Select(i => i == 0 ? first : ModelGraph.InputName).ToArray()));
        if (inputs == 0) nodes.Add(new Node("sum", new BinaryOp(BinaryKind.Add), [ModelGraph.InputName, "op"]));
        if (ReadsIds(name)) return new("op_" + name, [1, 5], nodes, nodes[^1].Name, null, null, [], null, ElementType.Int64);
        return new("op_" + name, [1, 4, 6, 6], nodes, nodes[^1].Name, null, null, []);
    }

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var s in Samples) data.Add(s.Case);
        return data;
    }

    [Fact]
    public void Every_op_kind_has_a_sample()
    {
        var kinds = typeof(Op).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(Op)) && !t.IsAbstract && t.IsPublic);
        var sampled = Samples.Select(s => s.Op.GetType()).ToHashSet();
        Assert.Empty(kinds.Where(k => !sampled.Contains(k)).Select(k => k.Name));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Declared_parameter_shapes_are_the_layers_state(string name)
    {
        var (_, op, inputs) = Samples.Single(s => s.Case == name);
        var graph = OneOp(name, op, inputs);
        using var layer = op.CreateLayer();
        var declared = op.ParameterShapes;
        // A tensor named by its node is held by the layer under a stand-in name (the module puts it on the parent).
        Assert.Equal(declared.Where(p => !p.IsBuffer).Select(p => (p.Name == ParameterShape.NodeItself ? Layer.NodeTensorName : p.Name, string.Join(",", p.Shape))),
            layer.named_parameters().Select(p => (p.name, string.Join(",", p.parameter.shape))));
        Assert.Equal(declared.Where(p => p.IsBuffer).Select(p => (p.Name, string.Join(",", p.Shape))),
            layer.named_buffers().Select(b => (b.name, string.Join(",", b.buffer.shape))));
        Assert.Equal(declared.Sum(p => p.Shape.Aggregate(1L, (a, d) => a * d)), GraphJson.ParameterElements(graph));
    }

    [Theory]
    [Trait("Category", "Onnx")]
    [MemberData(nameof(Cases))]
    public void Exports_and_imports_to_the_same_computation(string name)
    {
        var (_, op, inputs) = Samples.Single(s => s.Case == name);
        using var scope = NewDisposeScope();
        using var model = new GraphModule(OneOp(name, op, inputs));
        var state = model.state_dict();
        ReferenceFill.FillStateDict(state, state.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString().ToLowerInvariant())), 5);
        model.eval();
        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, name + ".onnx");
            OnnxExporter.Export(model, file);
            var imported = OnnxImporter.Import(file);
            using var back = imported.CreateModule();
            back.eval();
            // Positive inputs, so Log, Sqrt and Reciprocal compare numbers rather than NaNs.
            using var x = ReadsIds(name) ? ReferenceFill.Input([2, 5], 9).abs().mul(100).remainder(4).to(ScalarType.Int64) : ReferenceFill.Input([2, 4, 6, 6], 9).abs() + 0.5;
            using var _ = no_grad();
            using var ours = model.forward(x);
            using var theirs = back.forward(x);
            Assert.Equal(ours.shape, theirs.shape);
            double d = (ours - theirs).abs().max().item<float>();
            Assert.True(d <= 1e-5, $"{name} ({op.Kind}): the re-imported graph differs by {d:G3}; imported as {string.Join(", ", imported.Graph.Nodes.Select(n => n.Op.Kind))}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
