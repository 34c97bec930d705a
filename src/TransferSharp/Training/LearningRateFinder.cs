using System.Diagnostics;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>Settings of the learning-rate range test; the defaults are fastai's <c>lr_find</c>.</summary>
public sealed record LearningRateFinderOptions
{
    /// <summary>Rate of the first mini-batch.</summary>
    public double StartLearningRate { get; init; } = 1e-7;

    /// <summary>Rate of the last mini-batch.</summary>
    public double EndLearningRate { get; init; } = 10;

    /// <summary>Mini-batches of the ramp (the data is cycled when it has fewer).</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Fine-tuning: test the rates of stage 1 (head on the frozen body) or stage 2 (the unfrozen top groups,
    /// the body at <see cref="TrainOptions.BodyLearningRateFactor"/> × the rate). Head mode is always stage 1.</summary>
    public int Stage { get; init; } = 1;

    /// <summary>Stop when the smoothed loss exceeds this multiple of its minimum (or is not finite).</summary>
    public double DivergenceFactor { get; init; } = 4;

    /// <summary>Checks the settings; throws <see cref="InvalidOptionException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (!(StartLearningRate > 0)) throw new InvalidOptionException(nameof(StartLearningRate), $"StartLearningRate must be positive (got {StartLearningRate})");
        if (!(EndLearningRate > StartLearningRate)) throw new InvalidOptionException(nameof(EndLearningRate), $"EndLearningRate ({EndLearningRate}) must exceed StartLearningRate ({StartLearningRate})");
        if (Steps < 10) throw new InvalidOptionException(nameof(Steps), $"Steps must be at least 10 (got {Steps})");
        if (Stage is not (1 or 2)) throw new InvalidOptionException(nameof(Stage), $"Stage must be 1 or 2 (got {Stage})");
        if (!(DivergenceFactor > 1)) throw new InvalidOptionException(nameof(DivergenceFactor), $"DivergenceFactor must exceed 1 (got {DivergenceFactor})");
    }
}

/// <summary>The range test's curve and the rate it suggests.</summary>
/// <param name="LearningRates">Rate of each mini-batch.</param>
/// <param name="Losses">Training loss of each mini-batch.</param>
/// <param name="SmoothedLosses">Exponentially smoothed, bias-corrected loss (β = 0.98, as fastai's recorder).</param>
/// <param name="SuggestedLearningRate">fastai's "valley": a third into the longest descending stretch of the smoothed curve.</param>
/// <param name="SteepestLearningRate">fastai's "steep": where the smoothed loss falls fastest per decade of rate.</param>
/// <param name="Diverged">True when the loss blew up before the last step (the ramp stopped there).</param>
/// <param name="Seconds">Wall time (feature extraction included in head mode).</param>
public sealed record LearningRateFinderResult(IReadOnlyList<double> LearningRates, IReadOnlyList<double> Losses, IReadOnlyList<double> SmoothedLosses,
    double SuggestedLearningRate, double SteepestLearningRate, bool Diverged, double Seconds)
{
    /// <summary>The rule behind <see cref="SuggestedLearningRate"/>.</summary>
    public const string Rule = "valley";

    /// <summary>Writes the curve (smoothed loss over the rate, log scale) with the suggestion marked, as a PNG.</summary>
    public void SavePlot(string path, string? title = null) => Plots.SaveLearningRateFinder(this, path, title);
}

/// <summary>
/// The learning-rate range test (Smith 2015; fastai's <c>lr_find</c>): trains a fresh copy of the model the options
/// describe for <see cref="LearningRateFinderOptions.Steps"/> mini-batches while the rate grows exponentially from
/// the start to the end rate, records the smoothed loss, stops when it diverges, and suggests a rate. The source's
/// weights are copied, never changed, so nothing needs restoring afterwards; the seed fixes the batches.
/// </summary>
public static class LearningRateFinder
{
    /// <summary>Runs the test on <paramref name="train"/> (all of it: no validation split). Head mode trains the head on
    /// cached features (what <see cref="HeadSolver.Epochs"/> would); fine-tuning trains on augmented images.</summary>
    public static LearningRateFinderResult Run(VisionModel source, Dataset train, TrainOptions options, LearningRateFinderOptions? finder = null,
        TrainRunOptions? run = null, CancellationToken cancellation = default)
    {
        finder ??= new LearningRateFinderOptions();
        finder.Validate();
        options = options with { ValidationSplit = 0, HeadSolver = HeadSolver.Epochs };
        options.Validate();
        run ??= new TrainRunOptions();
        if (train.ClassNames.Count < 2) throw new DatasetException($"{train.Origin}: {train.ClassNames.Count} class(es); a classifier needs at least 2");
        var clock = Stopwatch.StartNew();
        // The test trains a copy: the source stays as it is.
        var copy = StateLoader.Clone(source.Module);
        using var scratch = new VisionModel(copy, source.Preprocessing, source.Labels, source.Description, architecture: source.Architecture);
        Trainer.PrepareModel(scratch, train.ClassNames, options);
        var model = scratch.Module;
        {
            var task = Trainer.CreateTask(scratch, train, null, options, run, cancellation);
            int stage = options.Mode == TrainMode.Head ? 1 : finder.Stage;
            task.EnterStage(stage);
            using var optimizer = new Optimizer(options.Optimizer, task.ParamGroups(stage, options), options.WeightDecay, options.Momentum);
            var rates = new List<double>();
            var losses = new List<double>();
            var smoothed = new List<double>();
            double average = 0, best = double.PositiveInfinity;
            bool diverged = false;
            const double beta = 0.98;
            // Dropout draws from the run's generator (the first epoch's, as training would), never from the host's global one.
            using var generator = TrainLoop.DropoutGenerator(options.Seed, 0);
            model.Generator = generator;
            model.train();
            for (int epoch = 0; rates.Count < finder.Steps && !diverged; epoch++)
            {
                foreach (var (x, y) in task.TrainBatches(epoch, cancellation))
                {
                    int i = rates.Count;
                    double rate = finder.StartLearningRate * Math.Pow(finder.EndLearningRate / finder.StartLearningRate, i / (double)(finder.Steps - 1));
                    foreach (var g in optimizer.Groups) g.LearningRate = rate * g.BaseLearningRate / options.LearningRate;
                    double loss;
                    using (x)
                    using (y)
                    using (var scope = NewDisposeScope())
                    {
                        var l = nn.functional.cross_entropy(task.Forward(x), y, label_smoothing: options.LabelSmoothing);
                        l.backward();
                        loss = l.item<float>();
                    }
                    optimizer.Step();
                    optimizer.ZeroGrad();
                    average = beta * average + (1 - beta) * loss;
                    double smooth = average / (1 - Math.Pow(beta, i + 1));
                    rates.Add(rate);
                    losses.Add(loss);
                    smoothed.Add(smooth);
                    best = Math.Min(best, smooth);
                    run.Progress?.Report(new ProgressInfo("lr-find", i + 1, finder.Steps, 0, Loss: smooth));
                    cancellation.ThrowIfCancellationRequested();
                    if (!double.IsFinite(smooth) || smooth > finder.DivergenceFactor * best) { diverged = i + 1 < finder.Steps; break; }
                    if (rates.Count >= finder.Steps) break;
                }
            }
            var (valley, steep) = Suggest(rates, smoothed, finder.Steps);
            return new LearningRateFinderResult(rates, losses, smoothed, valley, steep, diverged, clock.Elapsed.TotalSeconds);
        }
    }

    /// <summary>fastai's "valley" and "steep" on the smoothed curve, both after dropping the first tenth of the
    /// planned steps and the last five (the warm-up noise and the blow-up), as fastai's <c>lr_find</c> does.</summary>
    internal static (double Valley, double Steep) Suggest(IReadOnlyList<double> rates, IReadOnlyList<double> smoothed, int plannedSteps)
    {
        int from = plannedSteps / 10, to = rates.Count - 5;
        if (to - from < 3) (from, to) = (0, rates.Count);
        var lr = rates.Skip(from).Take(to - from).ToArray();
        var loss = smoothed.Skip(from).Take(to - from).Select(v => double.IsFinite(v) ? v : double.MaxValue).ToArray();
        int n = loss.Length;
        // Valley: the longest strictly decreasing subsequence; the rate a third of the way (plus a sixth) into it.
        var lds = Enumerable.Repeat(1, n).ToArray();
        int maxStart = 0, maxEnd = 0;
        for (int i = 1; i < n; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (loss[i] < loss[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
                // Inside the inner loop, as fastai has it: the start is taken from the length reached so far.
                if (lds[maxEnd] < lds[i])
                {
                    maxEnd = i;
                    maxStart = maxEnd - lds[maxEnd];
                }
            }
        }
        double sections = (maxEnd - maxStart) / 3.0;
        int valley = Math.Clamp(maxStart + (int)sections + (int)(sections / 2), 0, n - 1);
        int steep = 0;
        double steepest = double.PositiveInfinity;
        for (int i = 0; i + 1 < n; i++)
        {
            double slope = (loss[i + 1] - loss[i]) / (Math.Log(lr[i + 1]) - Math.Log(lr[i]));
            if (slope < steepest) (steepest, steep) = (slope, i);
        }
        return (lr[valley], lr[steep]);
    }
}
