using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>Token sequences [N, T, C] in the graph IR, on ViT-S/16 at 32 px (a 2×2 patch grid, 5 tokens): features,
/// pooling, cutting, heads, freezing, summaries, GraphJson, rewrites and the position embedding's resampling.</summary>
[Trait("Category", "Graph")]
public sealed class TokenGraphTests
{
    private static GraphModule Vit(int classes = 10) =>
        ModelZoo.Create("vit_small_patch16_224", new ModelOptions { NumClasses = classes, ImageSize = 32, Seed = 3 });

    [Fact]
    public void Features_are_the_final_norms_tokens_and_pool_to_the_class_token()
    {
        using var model = Vit();
        var g = model.Graph;
        Assert.Equal("norm", g.FeatureNode);
        Assert.Equal([1, 5, 384], g.Shapes["norm"]);
        Assert.Equal("global_pool", g.TokenPoolNode);
        Assert.Equal(384, model.NumFeatures);
        Assert.Equal("global_pool", g.PreLogitsNode);
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = randn(2, 3, 32, 32, generator: new Generator(1));
        var taps = model.Taps(x, "norm", "global_pool");
        var tokens = taps["norm"];
        Assert.True(model.PooledFeatures(x).allclose(tokens.select(1, 0)));
        Assert.True(taps["global_pool"].allclose(tokens.select(1, 0)));
        var both = model.PooledFeatures(x, TokenPoolKind.ClassAndMean);
        Assert.Equal([2, 768], both.shape);
        Assert.True(both.allclose(cat([tokens.select(1, 0), tokens.narrow(1, 1, 4).mean([1])], 1)));
        Assert.True(model.PooledFeatures(x, PoolKind.Max).allclose(tokens.amax([1])));
    }

    [Fact]
    public void The_models_own_tensors_are_named_as_timm_names_them_and_keep_the_native_grid()
    {
        using var model = Vit();
        var keys = model.state_dict().Keys.ToList();
        Assert.Equal(["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight"], keys.Take(5));
        // The embedding keeps the 14×14 grid of 224 px, so a checkpoint loads at any input size.
        Assert.Equal([1, 197, 384], model.state_dict()["pos_embed"].shape);
        Assert.Equal([1, 1, 384], model.state_dict()["cls_token"].shape);
        Assert.Contains(model.named_parameters(), p => p.name == "cls_token" && p.parameter.requires_grad);
    }

    [Fact]
    public void Freezing_the_stem_freezes_the_class_token_and_position_embedding()
    {
        using var model = Vit();
        Assert.Equal(["stem", "stage1", "stage2", "stage3", "stage4", "head"], model.GroupNames);
        model.Freeze("stem");
        var frozen = model.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        Assert.Equal(["cls_token", "patch_embed.proj.bias", "patch_embed.proj.weight", "pos_embed"], frozen.Order(StringComparer.Ordinal));
        var stem = model.GroupState().Single(s => s.Group == "stem");
        Assert.Equal(384 + 197 * 384 + 384 * 3 * 16 * 16 + 384, stem.Frozen);
        Assert.Equal(0, stem.Trainable);
    }

    [Fact]
    public void A_new_classifier_keeps_the_class_token_and_a_cut_inside_pools_its_tokens()
    {
        using var model = Vit(classes: 5);
        using (no_grad()) model.state_dict()["cls_token"].fill_(0.25f);
        model.ResetClassifier(3);
        Assert.Equal(0.25f, model.state_dict()["cls_token"].max().item<float>());
        Assert.Equal("head", model.Graph.ClassifierNode);
        Assert.Equal([1, 3], model.Graph.Shapes[model.Graph.Output]);

        var cut = model.Graph.CutAt("blocks.5");
        Assert.Equal("blocks.5", cut.FeatureNode);
        Assert.Equal(384, cut.NumFeatures);
        var headed = cut.WithClassifier(4);
        Assert.Equal([1, 4], headed.Shapes[headed.Output]);
        Assert.IsType<ReduceOp>(headed.Node(headed.PreLogitsNode).Op);
        using var small = new GraphModule(headed);
        small.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, 32, 32);
        using var logits = small.forward(x);
        Assert.Equal([2, 4], logits.shape);
    }

    [Fact]
    public void Summary_counts_attention_and_token_linear_layers()
    {
        using var model = Vit();
        var summary = model.Summary();
        var attn = summary.Rows.Single(r => r.Name == "blocks.0.attn");
        Assert.Equal("SelfAttention", attn.Kind);
        Assert.Equal([1, 5, 384], attn.OutputShape);
        Assert.Equal(2L * 5 * 5 * 384, attn.Macs);
        Assert.Equal(5L * 384 * 1152, summary.Rows.Single(r => r.Name == "blocks.0.attn.qkv").Macs);
        Assert.Equal(model.ParameterCount, summary.Parameters);
        // timm's vit_small_patch16_224 has 22,050,664 parameters (its pretrained config, 22.05 M).
        Assert.Equal(22_050_664 - 1000 * 385 + 10 * 385, summary.Parameters);
    }

    [Fact]
    public void A_token_graph_round_trips_through_GraphJson_and_folding()
    {
        using var model = Vit();
        var json = GraphJson.Serialize(model.Graph);
        var back = GraphJson.Deserialize(json);
        Assert.Equal(json, GraphJson.Serialize(back));
        Assert.Equal(model.Graph.FeatureNode, back.FeatureNode);
        Assert.Equal(GraphJson.ParameterElements(model.Graph), model.ParameterCount);
        model.eval();
        using var folded = InferenceOptimizer.FoldBatchNorm(model);
        using var _ = no_grad();
        using var x = randn(1, 3, 32, 32);
        using var a = model.forward(x);
        using var b = folded.forward(x);
        Assert.True(a.allclose(b), "a graph without BatchNorm is left as it is");
    }

    [Fact]
    public void The_position_embedding_is_resampled_to_other_grids_keeping_its_prefix_rows()
    {
        var op = new PositionEmbeddingOp(2, 3, 3, PrefixTokens: 1);
        using var _ = no_grad();
        using var embedding = arange(20, dtype: float32).reshape(1, 10, 2);
        using var same = op.At(embedding, 3, 3);
        Assert.True(same.allclose(embedding));
        using var constant = cat([full(1, 1, 2, -5f), full(1, 9, 2, 7f)], 1);
        using var larger = op.At(constant, 5, 4);
        Assert.Equal([1, 1 + 20, 2], larger.shape);
        Assert.Equal(-5f, larger[0, 0, 0].item<float>());
        // Bicubic resampling of a constant grid is that constant, larger or smaller.
        Assert.True(larger.narrow(1, 1, 20).allclose(full(1, 20, 2, 7f), 1e-5, 1e-5));
        using var smaller = op.At(constant, 2, 2);
        Assert.True(smaller.narrow(1, 1, 4).allclose(full(1, 4, 2, 7f), 1e-5, 1e-5));
        Assert.Throws<GraphException>(() => op.InferShape([[1, 11, 2], [1, 2, 3, 3]]));
    }

    [Fact]
    public void Dinov2_takes_any_multiple_of_its_patch_size()
    {
        using var model = ModelZoo.Create("vit_small_patch14_dinov2", new ModelOptions { NumClasses = 0, ImageSize = 28 });
        Assert.Equal([1, 1370, 384], model.state_dict()["pos_embed"].shape);
        Assert.Null(model.Graph.ClassifierNode);
        Assert.Contains(model.state_dict().Keys, k => k == "blocks.0.ls1.gamma");
        model.eval();
        using var _ = no_grad();
        using var x = randn(2, 3, 42, 56);
        using var features = model.forward(x);
        Assert.Equal([2, 384], features.shape);
        Assert.Equal([2, 1 + 3 * 4, 384], model.ForwardFeatures(x).shape);
    }
    private static bool Same(Tensor a, Tensor b) => a.allclose(b, 0, 0);

    [Fact]
    public void Drop_path_rises_per_block_is_the_identity_in_eval_and_drops_whole_samples_in_training()
    {
        using var plain = Vit(3);
        using var dropping = ModelZoo.Create("vit_small_patch16_224", new ModelOptions { NumClasses = 3, ImageSize = 32, Seed = 3, DropPathRate = 0.1 });
        // timm: linspace(0, drop_path_rate, depth), after the attention and after the MLP branch of each block; block 0 gets 0.
        var rates = dropping.Graph.Nodes.Where(n => n.Op is DropPathOp).ToDictionary(n => n.Name, n => ((DropPathOp)n.Op).P);
        Assert.Equal(22, rates.Count);
        Assert.DoesNotContain("blocks.0.drop_path1", rates.Keys);
        Assert.Equal(0.1 * 5 / 11, rates["blocks.5.drop_path2"], 12);
        Assert.Equal(0.1, rates["blocks.11.drop_path1"], 12);
        Assert.DoesNotContain(plain.Graph.Nodes, n => n.Op is DropPathOp);
        Assert.Equal(plain.state_dict().Keys, dropping.state_dict().Keys);
        using (no_grad())
            foreach (var (name, t) in plain.state_dict()) dropping.state_dict()[name].copy_(t);

        using var scope = NewDisposeScope();
        // One image sixteen times: rows differ only where a sample's branches were dropped.
        var x = randn(1, 3, 32, 32, generator: new Generator(5)).expand(16, -1, -1, -1).contiguous();
        using (no_grad())
        {
            plain.eval();
            dropping.eval();
            Assert.True(Same(dropping.forward(x), plain.forward(x)), "DropPath changes nothing in eval mode");
            plain.train();
            dropping.train();
            var still = plain.forward(x);
            Assert.True(Same(still, still[0].expand(16, -1)), "without DropPath every sample gives the same logits");
            Tensor Draw(ulong seed)
            {
                using var g = new Generator(seed);
                dropping.Generator = g;
                try { return dropping.forward(x); }
                finally { dropping.Generator = null; }
            }
            var a = Draw(7);
            Assert.False(Same(a, a[0].expand(16, -1)), "per-sample masks make samples differ");
            Assert.True(Same(a, Draw(7)), "the same generator seed draws the same masks");
            Assert.False(Same(a, Draw(8)));
        }
    }

    [Fact]
    public void Register_tokens_follow_the_class_token_and_no_pooling_reads_them()
    {
        using var model = ModelZoo.Create("vit_small_patch14_reg4_dinov2", new ModelOptions { NumClasses = 0, ImageSize = 28, Seed = 3 });
        var keys = model.state_dict().Keys.ToList();
        // timm's order and shapes; no_embed_class: the embedding has rows for the 37×37 patch grid only.
        Assert.Equal(["cls_token", "reg_token", "pos_embed", "patch_embed.proj.weight"], keys.Take(4));
        Assert.Equal([1, 4, 384], model.state_dict()["reg_token"].shape);
        Assert.Equal([1, 37 * 37, 384], model.state_dict()["pos_embed"].shape);
        Assert.Contains(model.named_parameters(), p => p.name == "reg_token" && p.parameter.requires_grad);
        model.Freeze("stem");
        Assert.Contains(model.named_parameters(), p => p.name == "reg_token" && !p.parameter.requires_grad);

        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = randn(2, 3, 42, 56, generator: new Generator(4));
        var tokens = model.ForwardFeatures(x);
        Assert.Equal([2, 1 + 4 + 3 * 4, 384], tokens.shape);
        Assert.True(model.forward(x).allclose(tokens.select(1, 0)), "pre-logits: the class token after the final norm");
        var patches = tokens.narrow(1, 5, 12).mean([1]);
        Assert.True(model.PooledFeatures(x, TokenPoolKind.ClassAndMean).allclose(cat([tokens.select(1, 0), patches], 1)),
            "DINOv2's probe features average the patch tokens only, not the registers");
    }
}
