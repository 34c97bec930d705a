using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Classification;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

/// <summary>Tests here read and seed LibTorch's global generator: nothing else may run beside them.</summary>
[CollectionDefinition("GlobalGenerator", DisableParallelization = true)]
public sealed class GlobalGeneratorCollection;

/// <summary>
/// Randomness flows through generators of the library's own, seeded from the options: the host's global generator is
/// neither reseeded nor drawn from, and the same seed gives the same model whatever the host did with it.
/// </summary>
[Trait("Category", "Training")]
[Collection("GlobalGenerator")]
public sealed class SeededRandomnessTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private static TrainOptions FineTune(int seed) => new()
    {
        Mode = TrainMode.FineTune,
        Epochs = 1,
        HeadEpochs = 0,
        UnfreezeTop = 1,
        BatchSize = 6,
        Head = new HeadSpec { Kind = HeadKind.Mlp, Hidden = 16, Dropout = 0.5 },
        ValidationSplit = 0,
        Seed = seed,
    };

    private static TrainOptions HeadEpochs(int seed) => new()
    {
        HeadSolver = HeadSolver.Epochs,
        Epochs = 2,
        BatchSize = 16,
        Head = new HeadSpec { Kind = HeadKind.Mlp, Hidden = 8, Dropout = 0.5 },
        Seed = seed,
    };

    private ImageDataset Images() => ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "data"), 4, "bag", "sandal", "trouser"));

    private static float[] Weights(VisionModel model) =>
        model.Module.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray()).ToArray();

    private float[] FineTuned(int seed)
    {
        using var model = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32, Seed = seed });
        Trainer.Train(model, Images(), null, FineTune(seed));
        return Weights(model);
    }

    private static float[] HeadTrained(int seed)
    {
        using var model = VisionModel.Load("resnet18", "none", new ModelOptions { Seed = seed });
        Trainer.TrainHead(model, TrainingData.Features(60, new Random(1)), TrainingData.Features(30, new Random(2)), HeadEpochs(seed));
        return Weights(model);
    }

    [Fact]
    public void Training_neither_reseeds_nor_draws_from_the_global_generator()
    {
        manual_seed(123);
        using var first = rand(5);
        manual_seed(123);
        HeadTrained(3);
        FineTuned(3);
        using (var fresh = VisionModel.Load("resnet18", "none")) fresh.Module.ResetClassifier(4);
        using var second = rand(5);
        Assert.Equal(first.data<float>().ToArray(), second.data<float>().ToArray());
    }

    [Fact]
    public void The_same_seed_gives_the_same_model_whatever_the_global_seed_and_another_seed_another_model()
    {
        manual_seed(1);
        var a = FineTuned(5);
        manual_seed(999);
        using (rand(17)) { }
        var b = FineTuned(5);
        var c = FineTuned(6);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);

        manual_seed(1);
        var headA = HeadTrained(5);
        manual_seed(2);
        var headB = HeadTrained(5);
        Assert.Equal(headA, headB);
        Assert.NotEqual(headA, HeadTrained(6));
    }

    [Fact]
    public void Random_weights_follow_the_model_options_seed()
    {
        static float[] Conv(long seed)
        {
            using var m = ModelZoo.Create("resnet18", new ModelOptions { Seed = seed });
            return m.state_dict()["conv1.weight"].data<float>().ToArray();
        }
        manual_seed(1);
        var a = Conv(4);
        manual_seed(2);
        Assert.Equal(a, Conv(4));
        Assert.NotEqual(a, Conv(5));
        // Kaiming-normal, fan-out (torchvision's ResNet init): 64 · 7 · 7 fan-out gives a standard deviation of 0.0253.
        double std = Math.Sqrt(a.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.0253 * 0.95, 0.0253 * 1.05);
    }

    [Fact]
    public void Dropout_keeps_one_minus_p_of_the_values_scaled_by_its_inverse_from_the_module_generator()
    {
        var b = new GraphBuilder("d", 10, 10, 10);
        var graph = b.Build(b.Dropout(b.Input, 0.3));
        using var module = new GraphModule(graph);
        module.train();
        using var ones = torch.ones(1, 10, 10, 10);
        Tensor Draw(ulong seed)
        {
            using var g = new Generator(seed);
            module.Generator = g;
            try { return module.forward(ones); }
            finally { module.Generator = null; }
        }
        using var x = Draw(7);
        using var y = Draw(7);
        using var z = Draw(8);
        var values = x.data<float>().ToArray();
        Assert.All(values, v => Assert.True(v == 0 || Math.Abs(v - 1 / 0.7) < 1e-6, $"value {v}"));
        Assert.InRange(values.Count(v => v == 0), 240, 360);
        Assert.Equal(values, y.data<float>().ToArray());
        Assert.NotEqual(values, z.data<float>().ToArray());
        module.eval();
        using var eval = module.forward(ones);
        Assert.Equal(ones.data<float>().ToArray(), eval.data<float>().ToArray());
    }

    [Fact]
    public void Drop_path_drops_whole_samples_with_probability_p_scaling_the_kept_from_the_module_generator()
    {
        var b = new GraphBuilder("dp", 2, 3, 3);
        var graph = b.Build(b.Add(new DropPathOp(0.25), "drop_path", b.Input));
        using var module = new GraphModule(graph);
        module.train();
        using var ones = torch.ones(400, 2, 3, 3);
        Tensor Draw(ulong seed)
        {
            using var g = new Generator(seed);
            module.Generator = g;
            try { return module.forward(ones); }
            finally { module.Generator = null; }
        }
        using var x = Draw(7);
        using var y = Draw(7);
        using var z = Draw(8);
        // Each sample is all zeros or all 1/(1 − p): the mask is per sample, not per value.
        var perSample = x.reshape(400, -1);
        using var lo = perSample.amin(1);
        using var hi = perSample.amax(1);
        Assert.Equal(lo.data<float>().ToArray(), hi.data<float>().ToArray());
        var kept = hi.data<float>().ToArray();
        Assert.All(kept, v => Assert.True(v == 0 || Math.Abs(v - 1 / 0.75) < 1e-6, $"value {v}"));
        Assert.InRange(kept.Count(v => v == 0), 70, 130);
        Assert.Equal(x.data<float>().ToArray(), y.data<float>().ToArray());
        Assert.NotEqual(x.data<float>().ToArray(), z.data<float>().ToArray());
        module.eval();
        using var eval = module.forward(ones);
        Assert.Equal(ones.data<float>().ToArray(), eval.data<float>().ToArray());
    }

    [Fact]
    public void A_text_classifier_depends_on_its_seed_only()
    {
        var words = new[] { "red", "green", "blue", "cyan", "pink", "grey" };
        var examples = Enumerable.Range(0, 60).Select(i => new TextExample($"{words[i % 6]} {words[(i * 7) % 6]} {words[i % 3]}", i % 3 == 0 ? "a" : "b")).ToList();
        var data = new TextDataset(examples);
        float[] Train(int seed, TextModelKind kind)
        {
            var options = new TextClassifierOptions { Model = kind, Epochs = 2, EmbeddingDimension = 8, CnnFilters = 4, LstmHidden = 4, Dropout = 0.5, Seed = seed };
            using var classifier = TextClassifier.Train(data, null, null, options);
            var path = Path.Combine(_dir, $"t{seed}{kind}.safetensors");
            classifier.Save(path);
            using var loaded = TextClassifier.Load(path);
            return loaded.Predict(words, 2).SelectMany(p => p.Select(s => (float)s.Probability)).ToArray();
        }
        foreach (var kind in new[] { TextModelKind.Bow, TextModelKind.Cnn, TextModelKind.BiLstm })
        {
            manual_seed(1);
            var a = Train(3, kind);
            manual_seed(2);
            Assert.Equal(a, Train(3, kind));
            Assert.NotEqual(a, Train(4, kind));
            // Nor does building and training a text classifier draw from the host's generator.
            manual_seed(5);
            using var expected = rand(5);
            manual_seed(5);
            Train(3, kind);
            using var after = rand(5);
            Assert.Equal(expected.data<float>().ToArray(), after.data<float>().ToArray());
        }
    }
}
