using TorchSharp;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Inference;

/// <summary>
/// Rewrites a model for fast evaluation: BatchNorm folded into the convolution before it, and 4-D
/// weights stored channels-last (LibTorch picks oneDNN's NHWC kernels from the strides; see
/// ../shared/notes/performance.md). The result is a separate module in eval mode; the original is untouched.
/// </summary>
public static class InferenceOptimizer
{
    /// <summary>A copy of <paramref name="model"/> with every Conv→BatchNorm pair (the BN being the
    /// convolution's only reader) folded into one convolution with bias. Outputs are unchanged up to
    /// float rounding. Landmarks (output, feature node) keep their names.</summary>
    public static GraphModule FoldBatchNorm(GraphModule model)
    {
        var g = model.Graph;
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in g.Nodes) foreach (var i in n.Inputs) readers[i] = readers.GetValueOrDefault(i) + 1;
        var landmarks = new HashSet<string>(new[] { g.Output, g.FeatureNode }.Concat(g.AuxOutputs).OfType<string>(), StringComparer.Ordinal);

        var folded = new Dictionary<string, string>(StringComparer.Ordinal); // bn node → conv node
        foreach (var n in g.Nodes)
        {
            if (n.Op is not BatchNormOp || n.Inputs[0] == ModelGraph.InputName) continue;
            var producer = g.Node(n.Inputs[0]);
            if (producer.Op is Conv2dOp && readers.GetValueOrDefault(producer.Name) == 1 && !landmarks.Contains(producer.Name))
                folded[n.Name] = producer.Name;
        }
        var convs = new HashSet<string>(folded.Values, StringComparer.Ordinal);
        var nodes = new List<Node>();
        foreach (var n in g.Nodes)
        {
            if (convs.Contains(n.Name)) continue;
            if (folded.TryGetValue(n.Name, out var convName))
            {
                var conv = g.Node(convName);
                var op = (Conv2dOp)conv.Op with { Bias = true, WeightStandardizationEps = null };
                nodes.Add(new Node(n.Name, op, conv.Inputs));
            }
            else nodes.Add(n);
        }
        var graph = g.With(nodes: nodes);
        var result = new GraphModule(graph);
        var src = model.state_dict();
        var dst = result.state_dict();
        // Every node that was not folded keeps its tensors, exactly; the folded ones are computed below.
        bool Kept(string key) => StateLoader.NodeOf(key) is not { } node || !(folded.ContainsKey(node) || convs.Contains(node));
        StateLoader.Load(result, src.Where(kv => Kept(kv.Key)).Select(kv => (kv.Key, kv.Value)), LoadPolicy.Exact, g.Name, include: Kept);
        using var _ = no_grad();
        foreach (var (bnName, convName) in folded)
        {
            using var scope = NewDisposeScope();
            var convOp = (Conv2dOp)g.Node(convName).Op;
            var bnOp = (BatchNormOp)g.Node(bnName).Op;
            var w = src[convName + ".weight"];
            if (convOp.WeightStandardizationEps is double eps)
            {
                var (v, m) = var_mean(w, [1, 2, 3], unbiased: false, keepdim: true);
                w = (w - m) / (v + eps).sqrt();
            }
            var gamma = src[bnName + ".weight"];
            var beta = src[bnName + ".bias"];
            var mean = src[bnName + ".running_mean"];
            var invStd = (src[bnName + ".running_var"] + bnOp.Eps).rsqrt();
            var scale = gamma * invStd;
            dst[bnName + ".weight"].copy_(w * scale.reshape(-1, 1, 1, 1));
            var bias = convOp.Bias ? src[convName + ".bias"] : zeros_like(mean);
            dst[bnName + ".bias"].copy_((bias - mean) * scale + beta);
        }
        result.eval();
        return result;
    }

    /// <summary>Stores every 4-D parameter and buffer NHWC-contiguous (viewed as NCHW), in place.</summary>
    public static void ToChannelsLast(nn.Module model) => Relayout(model, channelsLast: true);

    /// <summary>
    /// Stores <paramref name="model"/>'s 4-D weights channels-last, in place, and keeps that layout only when it
    /// computes what the NCHW layout computes: both are run on the same seeded probe batch at the graph's input
    /// shape. oneDNN's channels-last kernels are not right on every CPU (on an AMD EPYC with AVX-512 VP2INTERSECT
    /// and BF16, LibTorch 2.10 gave resnet18 logits off by 2.4 through one strided 1×1 convolution); there the
    /// weights go back to NCHW and false is returned, so callers feed NCHW batches and stay exact, only slower.
    /// On the same machine densenet121 channels-last crashed inside oneDNN, which no probe can catch: that is why
    /// channels-last is opt-in (<see cref="PredictorOptions.ChannelsLast"/>), for machines where it was measured.
    /// </summary>
    public static bool TryChannelsLast(GraphModule model)
    {
        if (model.Graph.InputShape.Length != 4) return false;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var shape = model.Graph.InputShape.ToArray();
        shape[0] = 2;
        using var generator = new torch.Generator(20260101);
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        var probe = randn(shape, generator: generator).to(device);
        var reference = model.forward(probe);
        ToChannelsLast(model);
        var fast = model.forward(ChannelsLast(probe));
        double scale = 1 + reference.abs().max().item<float>();
        double difference = (reference - fast).abs().max().item<float>();
        if (difference <= 1e-4 * scale) return true;
        Relayout(model, channelsLast: false);
        return false;
    }

    private static void Relayout(nn.Module model, bool channelsLast)
    {
        using var _ = no_grad();
        foreach (var (_, p) in model.named_parameters()) Relayout(p, channelsLast);
        foreach (var (_, b) in model.named_buffers()) Relayout(b, channelsLast);
    }

    private static void Relayout(Tensor t, bool channelsLast)
    {
        if (t.dim() != 4) return;
        if (channelsLast)
        {
            using var nhwc = t.permute(0, 2, 3, 1).contiguous();
            using var view = nhwc.permute(0, 3, 1, 2);
            t.set_(view);
        }
        else
        {
            using var nchw = t.contiguous();
            t.set_(nchw);
        }
    }

    /// <summary>An NCHW batch with channels-last strides (a copy).</summary>
    public static Tensor ChannelsLast(Tensor batch)
    {
        if (batch.dim() != 4) return batch.alias();
        using var nhwc = batch.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>The inference rewrite: fold BatchNorm and, when <paramref name="channelsLast"/> is asked for, channels-last
    /// weights where they are exact on this machine (<see cref="TryChannelsLast"/>); it is reset to false otherwise,
    /// and says whether to feed channels-last batches.</summary>
    public static GraphModule Optimize(GraphModule model, ref bool channelsLast)
    {
        var fast = FoldBatchNorm(model);
        channelsLast = channelsLast && TryChannelsLast(fast);
        return fast;
    }
}
