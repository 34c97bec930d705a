using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Weights;

/// <summary>The one state loader under its three policies: exact (names and shapes exactly the module's),
/// strict (PyTorch's strict loading plus the zoo's mapping) and lenient (what matches, with a report).</summary>
[Trait("Category", "Weights")]
public class StateLoaderTests
{
    private const string Conv = "features.conv0.weight";

    /// <summary>The tiny DenseNet's own tensors, as independent copies.</summary>
    private static Dictionary<string, Tensor> StateOf(GraphModule model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone(), StringComparer.Ordinal);

    /// <summary>The source's tensors with one missing (norm5's weight), one extra and one of another shape (conv0's weight).</summary>
    private static Dictionary<string, Tensor> WithThreeProblems(GraphModule source, string extra)
    {
        var state = StateOf(source);
        state.Remove("features.norm5.weight");
        state[extra] = ones(3);
        state[Conv] = zeros(8, 3, 5, 5);
        return state;
    }

    [Fact]
    public void Exact_refuses_a_missing_an_extra_and_a_misshaped_tensor_and_copies_nothing()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet();
        var state = WithThreeProblems(source, "features.extra.weight");
        var before = StateOf(model);

        var e = Assert.Throws<StateDictMismatchException>(() => StateLoader.Load(model, state, LoadPolicy.Exact, "a.safetensors"));
        Assert.IsAssignableFrom<InvalidFileException>(e);
        Assert.Equal("a.safetensors", e.FilePath);
        Assert.Equal(LoadPolicy.Exact, e.Report.Policy);
        Assert.Equal(["features.norm5.weight"], e.Report.Missing);
        Assert.Equal(["features.extra.weight"], e.Report.Unexpected);
        Assert.Equal(Conv, Assert.Single(e.Report.MisShaped).Key);
        Assert.Contains("features.conv0.weight (model [8, 3, 7, 7], checkpoint [8, 3, 5, 5])", e.Reason);
        Assert.Contains("exact loading; nothing was loaded", e.Message);
        foreach (var (name, t) in model.state_dict())
            Assert.True(WeightFixtures.Same(before[name], t), $"{name} changed although exact loading failed");
    }

    [Fact]
    public void Exact_renames_nothing_and_keeps_counters_it_was_not_given_as_problems()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet();
        // DataParallel's prefix is a rename strict loading makes; exact loading takes names as they are.
        var prefixed = StateOf(source).ToDictionary(kv => "module." + kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var e = Assert.Throws<StateDictMismatchException>(() => StateDictLoader.Load(model, prefixed, LoadPolicy.Exact, "dp.pth"));
        Assert.Equal(model.state_dict().Count, e.Report.Missing.Count);
        Assert.Empty(e.Report.Renamed);

        var strict = StateDictLoader.Load(model, prefixed, LoadPolicy.Strict, "dp.pth");
        Assert.True(strict.IsExact, strict.ToString());
        Assert.Equal(model.state_dict().Count, strict.Renamed.Count);

        // A BatchNorm counter absent from the source: PyTorch's strict loading resets it, exact loading refuses.
        var noCounter = StateOf(source);
        noCounter.Remove("features.norm0.num_batches_tracked");
        Assert.Equal(["features.norm0.num_batches_tracked"], Assert.Throws<StateDictMismatchException>(
            () => StateLoader.Load(model, noCounter, LoadPolicy.Exact, "x")).Report.Missing);
        Assert.True(StateLoader.Load(model, noCounter, LoadPolicy.Strict, "x").IsExact);
    }

    [Fact]
    public void Strict_renames_and_leaves_a_classifier_of_another_size_initialised()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet(numClasses: 5);
        var state = StateOf(source).ToDictionary(kv => "module." + kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var head = model.state_dict()["classifier.weight"].clone();

        var report = StateDictLoader.Load(model, state, LoadPolicy.Strict, "dp.pth");
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(["classifier.bias", "classifier.weight"], report.Reinitialised.Order());
        Assert.Contains(("module." + Conv, Conv), report.Renamed);
        Assert.False(report.HeadLoaded);
        Assert.True(WeightFixtures.Same(state["module." + Conv], model.state_dict()[Conv]));
        Assert.True(WeightFixtures.Same(head, model.state_dict()["classifier.weight"]), "the new classifier was overwritten");
        Assert.Contains("left initialised (new head)", report.ToString());

        // Exact loading of the same state into the 5-class model is a mismatch, not a new head.
        var plain = StateOf(source);
        var e = Assert.Throws<StateDictMismatchException>(() => StateLoader.Load(model, plain, LoadPolicy.Exact, "plain"));
        Assert.Equal(["classifier.bias", "classifier.weight"], e.Report.MisShaped.Select(m => m.Key).Order());
    }

    [Fact]
    public void Lenient_copies_what_matches_and_reports_every_skipped_key()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet();
        var state = WithThreeProblems(source, "somewhere.else");
        var convBefore = model.state_dict()[Conv].clone();

        var report = StateLoader.Load(model, state, LoadPolicy.Lenient, "partial");
        Assert.Equal(LoadPolicy.Lenient, report.Policy);
        Assert.False(report.IsExact);
        Assert.Equal(["features.norm5.weight"], report.Missing);
        Assert.Equal(["somewhere.else"], report.Unexpected);
        Assert.Equal(Conv, Assert.Single(report.MisShaped).Key);
        Assert.Equal(model.state_dict().Count - 2, report.Loaded.Count);
        Assert.True(WeightFixtures.Same(convBefore, model.state_dict()[Conv]), "a mis-shaped tensor was copied");
        Assert.True(WeightFixtures.Same(state["features.norm0.weight"], model.state_dict()["features.norm0.weight"]));
        var text = report.ToString();
        Assert.Contains("1 missing key(s): features.norm5.weight", text);
        Assert.Contains("1 unexpected key(s): somewhere.else", text);
        Assert.Contains("1 mis-shaped key(s): features.conv0.weight", text);
    }

    [Fact]
    public void Tensors_of_another_dtype_are_converted_in_the_copy()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet();
        var state = StateOf(source).ToDictionary(kv => kv.Key,
            kv => kv.Value.is_floating_point() ? kv.Value.to_type(kv.Key.Contains("conv") ? ScalarType.Float64 : ScalarType.Float16) : kv.Value,
            StringComparer.Ordinal);

        var report = StateLoader.Load(model, state, LoadPolicy.Exact, "mixed");
        Assert.True(report.IsExact);
        Assert.Equal(ScalarType.Float32, model.state_dict()[Conv].dtype);
        Assert.True(WeightFixtures.Same(state[Conv].to_type(ScalarType.Float32), model.state_dict()[Conv]));
        var norm = "features.norm0.weight";
        Assert.True(WeightFixtures.Same(state[norm].to_type(ScalarType.Float32), model.state_dict()[norm]));
    }

    [Fact]
    public void Exact_over_a_subset_ignores_the_keys_left_out()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var model = WeightFixtures.TinyDenseNet();
        // A head-only training checkpoint: the classifier's tensors, nothing else.
        var head = StateOf(source).Where(kv => kv.Key.StartsWith("classifier.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        static bool IsHead(string key) => key.StartsWith("classifier.", StringComparison.Ordinal);

        var report = StateLoader.Load(model, head, LoadPolicy.Exact, "ckpt", include: IsHead);
        Assert.Equal(["classifier.bias", "classifier.weight"], report.Loaded.Order());
        Assert.True(WeightFixtures.Same(head["classifier.weight"], model.state_dict()["classifier.weight"]));
        head.Remove("classifier.bias");
        Assert.Equal(["classifier.bias"], Assert.Throws<StateDictMismatchException>(
            () => StateLoader.Load(model, head, LoadPolicy.Exact, "ckpt", include: IsHead)).Report.Missing);
    }

    [Fact]
    public void A_clone_holds_equal_tensors_that_are_its_own()
    {
        using var scope = NewDisposeScope();
        using var model = WeightFixtures.TinyDenseNet();
        using var clone = StateLoader.Clone(model);
        foreach (var (name, t) in model.state_dict()) Assert.True(WeightFixtures.Same(t, clone.state_dict()[name]), name);
        using (no_grad()) model.state_dict()[Conv].zero_();
        Assert.False(WeightFixtures.Same(model.state_dict()[Conv], clone.state_dict()[Conv]), "the clone shares storage with its source");
    }

    [Fact]
    public void Loading_leaves_no_native_tensor_behind()
    {
        using var scope = NewDisposeScope();
        using var source = WeightFixtures.TinyDenseNet();
        using var gray = WeightFixtures.TinyDenseNet(inChannels: 1);
        using var model = WeightFixtures.TinyDenseNet();
        var state = StateOf(source);
        var damaged = WithThreeProblems(source, "somewhere.else");
        var stats = DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;

        StateDictLoader.Load(gray, state);                                  // adapts the first convolution
        StateLoader.Load(model, damaged, LoadPolicy.Lenient, "damaged");
        Assert.Throws<StateDictMismatchException>(() => StateLoader.Load(model, damaged, LoadPolicy.Exact, "damaged"));
        StateLoader.Load(model, state, LoadPolicy.Exact, "state");
        Assert.Equal(before, stats.ThreadTotalLiveCount);
    }
}
