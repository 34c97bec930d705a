using TransferSharp.Vision;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>The L-BFGS head fitter, the learning-rate finder and the evaluation pictures, on tiny data.</summary>
[Collection("Console")]
[Trait("Category", "Training")]
public sealed class HeadFitTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private static FeatureSet Make(int n, int seed) => TrainingData.Features(n, new Random(seed));

    [Fact]
    public void Minimise_finds_the_optimum_of_an_ill_conditioned_quadratic()
    {
        var scale = new[] { 1.0, 10, 100, 1000 };
        var centre = new[] { 3.0, -2, 0.5, 7 };
        var theta = new double[4];
        var (value, iterations, converged) = LogisticHead.Minimise(theta, t =>
            (t.Select((v, i) => scale[i] * (v - centre[i]) * (v - centre[i])).Sum(), t.Select((v, i) => 2 * scale[i] * (v - centre[i])).ToArray()));
        Assert.True(converged);
        Assert.InRange(iterations, 1, 200);
        Assert.InRange(value, 0, 1e-9);
        for (int i = 0; i < 4; i++) Assert.Equal(centre[i], theta[i], 1e-4);
    }

    [Fact]
    public void The_default_head_is_an_lbfgs_fit_with_its_penalty_chosen_on_validation_and_it_round_trips()
    {
        var train = Make(300, 2);
        var val = Make(90, 3);
        using var fitted = FitHead(train, val, new TrainOptions());
        var fit = fitted.Training!.HeadFit!;
        Assert.Contains(fit.L2, LogisticHead.L2Grid);
        Assert.True(fit.Converged);
        Assert.Equal(["head"], fitted.Training.TrainedGroups);
        var chosen = fit.Candidates.Single(c => c.L2 == fit.L2);
        Assert.Equal(fit.Candidates.Min(c => c.ValidationLoss), chosen.ValidationLoss);
        Assert.True(fitted.Training.BestValidationAccuracy > 0.9, $"validation accuracy {fitted.Training.BestValidationAccuracy}");

        // Deterministic and independent of the seed: a strictly convex problem has one optimum.
        using var again = FitHead(train, val, new TrainOptions { Seed = 9 });
        Assert.Equal(Weights(fitted), Weights(again));

        // The same data trained by epochs does not reach a lower validation loss than the converged fit.
        using var epochs = FitHead(train, val, new TrainOptions { HeadSolver = HeadSolver.Epochs, Epochs = 10, BatchSize = 32 });
        Assert.Null(epochs.Training!.HeadFit);
        Assert.True(chosen.ValidationLoss <= epochs.Training.History.Min(h => h.ValidationLoss!.Value) + 1e-6);

        // The weights live in the graph's own classifier: the model file keeps them and the fit's record.
        var path = Path.Combine(_dir, "head.safetensors");
        fitted.Save(path);
        using var loaded = VisionModel.Load(path);
        Assert.Equal(Weights(fitted), Weights(loaded));
        Assert.Equal(fit.L2, loaded.Training!.HeadFit!.L2);
        Assert.Equal(fit.Candidates.Count, loaded.Training.HeadFit.Candidates.Count);
    }

    private static float[] Weights(VisionModel model) => model.Module.state_dict()[model.Module.Graph.ClassifierNode + ".weight"].data<float>().ToArray();

    /// <summary>A fresh resnet18 with a head trained on the features (training changes the model it is given).</summary>
    private static VisionModel FitHead(FeatureSet train, FeatureSet? val, TrainOptions options)
    {
        var model = VisionModel.Load("resnet18", "none");
        Trainer.TrainHead(model, train, val, options);
        return model;
    }

    [Fact]
    public void Refitting_keeps_the_chosen_penalty_and_fits_training_and_validation_samples_together()
    {
        var train = Make(120, 2);
        var val = Make(60, 3);
        using var split = FitHead(train, val, new TrainOptions { RefitHead = false });
        using var refit = FitHead(train, val, new TrainOptions()); // the default
        Assert.Equal(120, split.Training!.HeadFit!.FinalFitSamples);
        Assert.Equal(180, refit.Training!.HeadFit!.FinalFitSamples);
        Assert.Equal(split.Training.HeadFit.L2, refit.Training.HeadFit.L2);
        Assert.Equal(split.Training.BestValidationAccuracy, refit.Training.BestValidationAccuracy); // the search's score
        Assert.NotEqual(Weights(split), Weights(refit));
        // A penalty given by the user is not a search: nothing is refitted.
        using var given = FitHead(train, val, new TrainOptions { L2 = 1e-2, RefitHead = true });
        Assert.Equal(120, given.Training!.HeadFit!.FinalFitSamples);
    }

    [Fact]
    public void A_given_l2_is_used_as_is_and_without_validation_the_penalty_is_one_over_n()
    {
        using var given = FitHead(Make(60, 2), Make(30, 3), new TrainOptions { L2 = 1e-2 });
        Assert.Equal([1e-2], given.Training!.HeadFit!.Candidates.Select(c => c.L2));
        using var blind = FitHead(Make(60, 2), null, new TrainOptions());
        Assert.Equal(1.0 / 60, blind.Training!.HeadFit!.L2, 12);
    }

    [Fact]
    public void Valley_picks_a_rate_inside_the_descent_and_steep_the_fastest_fall()
    {
        // A curve flat until 1e-4, falling to 1e-1, then blowing up: fastai's rules suggest rates in the fall.
        var rates = Enumerable.Range(0, 100).Select(i => 1e-7 * Math.Pow(1e8, i / 99.0)).ToArray();
        var losses = rates.Select(r => r < 1e-4 ? 2.3 : r < 1e-1 ? 2.3 - 0.6 * Math.Log10(r / 1e-4) : 0.5 + 5 * Math.Log10(r / 1e-1)).ToArray();
        var (valley, steep) = LearningRateFinder.Suggest(rates, losses, 100);
        Assert.InRange(valley, 1e-4, 1e-1);
        Assert.InRange(steep, 1e-4, 1e-1);
    }

    [Fact]
    public void Lr_find_and_evaluate_plots_from_the_cli()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 4, "bag", "coat", "sandal");
        var common = new[] { "--weights", "none", "--image-size", "32" };
        var plot = Path.Combine(_dir, "lr.png");
        var found = CliRunner.RunJson(["lr-find", "--model", "resnet18", .. common, "--data", data, "--steps", "30", "--batch-size", "4", "--plot", plot]);
        var rates = found.GetProperty("learningRates").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.InRange(rates.Length, 2, 30);
        Assert.True(rates.Zip(rates.Skip(1)).All(p => p.Second > p.First), "the rate grows every step");
        Assert.Equal("valley", found.GetProperty("suggestionRule").GetString());
        Assert.InRange(found.GetProperty("suggestedLearningRate").GetDouble(), rates[0], rates[^1]);
        Assert.Equal(rates.Length, found.GetProperty("smoothedLosses").GetArrayLength());
        Assert.True(new FileInfo(plot).Length > 5000);

        var model = Path.Combine(_dir, "m.safetensors");
        CliRunner.RunJson(["train", "--model", "resnet18", .. common, "--data", data, "--val-split", "0.25", "--out", model]);
        Assert.True(new FileInfo(Path.Combine(_dir, "m.curves.png")).Length > 5000, "the head fit's search over λ is drawn");
        var plots = Path.Combine(_dir, "plots");
        var eval = CliRunner.RunJson("evaluate", "--model", model, "--data", data, "--plots", plots, "--top-losses", "4");
        var top = eval.GetProperty("topLosses").EnumerateArray().Select(e => e.GetProperty("loss").GetDouble()).ToArray();
        Assert.Equal(4, top.Length);
        Assert.True(top.Zip(top.Skip(1)).All(p => p.First >= p.Second), "highest loss first");
        foreach (var png in new[] { "confusion.png", "top-losses.png" })
            Assert.True(new FileInfo(Path.Combine(plots, png)).Length > 5000, png);
    }
}
