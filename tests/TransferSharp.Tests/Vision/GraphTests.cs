using TorchSharp;
using TransferSharp.Vision.Graph;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>The graph IR and its interpreter on small hand-built graphs.</summary>
[Trait("Category", "Graph")]
public class GraphTests
{
    [Fact]
    public void In_place_execution_never_overwrites_a_value_that_is_still_read_through_a_view()
    {
        var b = new GraphBuilder("alias", 2, 4, 4);
        var c = b.Conv(b.Input, "conv", 2, 1, 1, PadSpec.None, bias: true);
        var view = b.Add(new IdentityOp(), "view", c);
        var flat = b.Add(new FlattenOp(1), "flat", c);
        var r = b.Relu(view, "relu");            // relu may not run in place: 'view' aliases 'conv', read again below
        var s = b.Sum("sum", r, c);
        var f2 = b.Flatten(s, "flat2");
        var o = b.Add(new ConcatOp(1), "out", f2, flat);
        using var m = new GraphModule(b.Build(o));
        m.eval();
        using var x = randn(3, 2, 4, 4);
        using var withGrad = m.forward(x);        // reference: grad mode disables in-place execution
        using var _ = no_grad();
        using var inference = m.forward(x);
        Assert.True(inference.allclose(withGrad, 1e-6, 1e-6));
    }

    [Fact]
    public void Validation_reports_cycles_missing_inputs_and_duplicates_by_name()
    {
        var conv = new Conv2dOp(3, 4, 3, 1, PadSpec.Symmetric(1), 1);
        var relu = new ActivationOp(ActivationKind.Relu);
        long[] shape = [1, 3, 8, 8];
        var e1 = Assert.Throws<GraphException>(() => new ModelGraph("g", shape,
            [new Node("a", conv, ["b"]), new Node("b", relu, ["a"])], "b", null, null, []));
        Assert.Contains("cycle", e1.Message);
        var e2 = Assert.Throws<GraphException>(() => new ModelGraph("g", shape,
            [new Node("a", conv, ["nowhere"])], "a", null, null, []));
        Assert.Contains("'nowhere'", e2.Message);
        var e3 = Assert.Throws<GraphException>(() => new ModelGraph("g", shape,
            [new Node("a", conv, ["input"]), new Node("a", relu, ["a"])], "a", null, null, []));
        Assert.Contains("two nodes are named 'a'", e3.Message);
        var e4 = Assert.Throws<GraphException>(() => new ModelGraph("g", [1, 5, 8, 8],
            [new Node("a", conv, ["input"])], "a", null, null, []));
        Assert.Contains("expects 3 input channels", e4.Message);
    }

    [Fact]
    public void Same_padding_and_asymmetric_pools_follow_tensorflow()
    {
        // TF "SAME", stride 2 on an even input: one extra pixel at the end only.
        var p = PadSpec.Same.Resolve(8, 8, 3, 2, 1);
        Assert.Equal((0, 0, 1, 1), p);
        var b = new GraphBuilder("same", 1, 8, 8);
        var y = b.Add(new Pool2dOp(PoolKind.Avg, 3, 2, PadSpec.Same, CountIncludePad: false), "pool", b.Input);
        using var m = new GraphModule(b.Build(y));
        using var _ = no_grad();
        using var x = ones(1, 1, 8, 8);
        using var o = m.forward(x);
        Assert.Equal(new long[] { 1, 1, 4, 4 }, o.shape);
        Assert.True(o.allclose(ones(1, 1, 4, 4)), "excluded padding must not dilute the average");
    }

    [Fact]
    public void Intermediates_are_freed_and_unneeded_nodes_do_not_run()
    {
        var b = new GraphBuilder("partial", 3, 8, 8);
        var a = b.Conv(b.Input, "a", 4, 3);
        var c = b.Conv(a, "c", 4, 3);
        b.Features(c);
        using var m = new GraphModule(b.Build(c));
        using var _ = no_grad();
        using var x = randn(1, 3, 8, 8);
        using var scope = NewDisposeScope();
        var outs = m.Run(x, "a");
        Assert.Single(outs);
        Assert.Equal(new long[] { 1, 4, 8, 8 }, outs[0].shape);
        using var pooledMax = m.PooledFeatures(x, PoolKind.Max);
        using var fmap = m.ForwardFeatures(x);
        Assert.True(pooledMax.allclose(fmap.amax([2, 3])));
    }
}
