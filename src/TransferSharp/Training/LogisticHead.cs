using System.Diagnostics;
using TorchSharp;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>
/// The linear head as a multinomial logistic regression on cached pooled features, fitted to convergence by L-BFGS
/// (two-loop recursion, ten pairs, Armijo backtracking) in float64, then written into the graph's own classifier
/// parameters (the classifier node's weight and bias): the model file, prediction, export and fine-tuning from
/// it see the same head as after epoch training. The problem is strictly convex for λ &gt; 0, so the result does not
/// depend on the seed, the learning rate or the batch size.
/// </summary>
internal static class LogisticHead
{
    /// <summary>λ grid, strongest first, half-decades from 1 to 1e-5: in scikit-learn's terms C = 1/(λN) spans the
    /// range LogisticRegressionCV's default Cs=10 searches for a few hundred to a few thousand samples.</summary>
    internal static readonly double[] L2Grid = [1, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5];

    private const int MaxIterations = 1000, History = 10;
    private const double GradientTolerance = 1e-6, RelativeTolerance = 1e-10;

    /// <summary>True when the options ask for this solver and the head is one linear layer.</summary>
    public static bool Applies(TrainOptions options) =>
        options.Mode == TrainMode.Head && options.HeadSolver == HeadSolver.Lbfgs && options.Head.Kind == HeadKind.Linear;

    /// <summary>
    /// Fits the head of <paramref name="model"/> on features [N, F] and labels [N]. λ: <see cref="TrainOptions.L2"/>
    /// when it is positive; otherwise the grid's λ of lowest validation cross-entropy (a smooth, proper score: the
    /// best of a dozen accuracies on a few hundred samples is biased upwards and ties often); without validation
    /// data 1/N, scikit-learn's default C = 1.
    /// </summary>
    public static TrainingState Fit(GraphModule model, Tensor trainX, Tensor trainY, Tensor? valX, Tensor? valY, TrainOptions options,
        Action<EpochRecord>? onEpoch, IProgress<ProgressInfo>? progress, CancellationToken cancellation, out HeadFitRecord record, bool refit = false)
    {
        var (weight, bias) = ClassifierOf(model);
        return Fit(weight, bias, model.Graph.ClassifierNode!, trainX, trainY, valX, valY, options, onEpoch, progress, cancellation, out record, refit);
    }

    /// <summary>
    /// <see cref="Fit(GraphModule, Tensor, Tensor, Tensor?, Tensor?, TrainOptions, Action{EpochRecord}?, IProgress{ProgressInfo}?, CancellationToken, out HeadFitRecord, bool)"/>
    /// for any linear layer: <paramref name="weight"/> [K, F] (or [K, F, 1, 1]) and <paramref name="bias"/> [K] are
    /// overwritten with the fitted head (a text classifier's head on a frozen encoder's cached embeddings goes this way).
    /// </summary>
    public static TrainingState Fit(Tensor weight, Tensor bias, string classifierName, Tensor trainX, Tensor trainY, Tensor? valX, Tensor? valY,
        TrainOptions options, Action<EpochRecord>? onEpoch, IProgress<ProgressInfo>? progress, CancellationToken cancellation, out HeadFitRecord record,
        bool refit = false)
    {
        var clock = Stopwatch.StartNew();
        int k = (int)weight.shape[0], f = (int)weight.shape[1];
        if (trainX.shape[1] != f)
            throw new TransferSharpException($"the cached features have {trainX.shape[1]} values per sample but classifier '{classifierName}' takes {f}");
        using var scope = NewDisposeScope();
        var x = trainX.to(CPU).to_type(ScalarType.Float64);
        var y = trainY.to(CPU);
        Tensor Targets(Tensor labels)
        {
            var t = nn.functional.one_hot(labels, k).to_type(ScalarType.Float64);
            return options.LabelSmoothing > 0 ? t * (1 - options.LabelSmoothing) + options.LabelSmoothing / k : t;
        }
        var targets = Targets(y);
        var vx = valX?.to(CPU).to_type(ScalarType.Float64);
        var vy = valY?.to(CPU);
        double[] grid = options.L2 > 0 ? [options.L2] : vx is null ? [1.0 / x.shape[0]] : L2Grid;

        var theta = new double[k * f + k];
        var candidates = new List<HeadFitCandidate>();
        double[]? best = null;
        double bestLoss = double.PositiveInfinity;
        bool converged = true;
        int worse = 0;
        for (int i = 0; i < grid.Length; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            double l2 = grid[i];
            var (objective, iterations, ok) = Minimise(theta, t => Objective(t, x, targets, k, f, l2), cancellation);
            converged &= ok;
            double? vLoss = null, vAcc = null;
            if (vx is not null) (vLoss, vAcc) = Score(theta, vx, vy!, k, f);
            candidates.Add(new HeadFitCandidate(l2, iterations, objective, vLoss, vAcc));
            if (best is null || (vLoss ?? 0) < bestLoss)
            {
                bestLoss = vLoss ?? 0;
                best = (double[])theta.Clone();
                worse = 0;
            }
            else worse++;
            progress?.Report(new ProgressInfo("fit head", i + 1, grid.Length, (i + 1) / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
            // The validation loss along the path falls, then rises as the penalty stops holding the weights back; the
            // weak-penalty end is also where L-BFGS needs the most iterations. Two worse λ in a row end the search.
            if (worse == 2) break;
        }
        var fitted = best!;
        var chosen = candidates[Enumerable.Range(0, candidates.Count).First(i => vx is null || candidates[i].ValidationLoss == bestLoss)];
        int finalSamples = (int)x.shape[0];
        if (refit && vx is not null && options.L2 <= 0)
        {
            // λ chosen, the validation samples join the training samples for the final fit (warm-started from the chosen one).
            x = cat([x, vx], 0);
            targets = cat([targets, Targets(vy!)], 0);
            y = cat([y, vy!], 0);
            var (_, _, ok) = Minimise(fitted, t => Objective(t, x, targets, k, f, chosen.L2), cancellation);
            converged &= ok;
            finalSamples = (int)x.shape[0];
        }
        using (no_grad())
        {
            weight.copy_(torch.tensor(fitted.AsSpan(0, k * f).ToArray(), [k, f]).view(weight.shape).to_type(weight.dtype).to(weight.device));
            bias.copy_(torch.tensor(fitted.AsSpan(k * f).ToArray()).to_type(bias.dtype).to(bias.device));
        }
        var (trainLoss, trainAccuracy) = Score(fitted, x, y, k, f);
        record = new HeadFitRecord(chosen.L2, converged, candidates) { FinalFitSamples = finalSamples };
        var epoch = new EpochRecord(1, 1, trainLoss, trainAccuracy, chosen.ValidationLoss, chosen.ValidationAccuracy, 0, clock.Elapsed.TotalSeconds);
        var state = new TrainingState
        {
            NextEpoch = 1, Stage = 1, BestEpoch = 1, History = [epoch], Seconds = clock.Elapsed.TotalSeconds,
            BestAccuracy = chosen.ValidationAccuracy ?? double.NegativeInfinity, BestLoss = chosen.ValidationLoss ?? double.PositiveInfinity,
        };
        onEpoch?.Invoke(epoch);
        return state;
    }

    /// <summary>The classifier node's weight ([K, F], or [K, F, 1, 1] where the reference classifies with a 1×1
    /// convolution) and bias [K].</summary>
    private static (Tensor Weight, Tensor Bias) ClassifierOf(GraphModule model)
    {
        var name = model.Graph.ClassifierNode ?? throw new TransferSharpException($"model '{model.Graph.Name}' has no classifier node to fit");
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
        if (!parameters.TryGetValue(name + ".weight", out var w) || !parameters.TryGetValue(name + ".bias", out var b)
            || w.dim() < 2 || w.shape.Skip(2).Any(d => d != 1))
            throw new TransferSharpException($"classifier node '{name}' of model '{model.Graph.Name}' is not a linear layer with a bias");
        return (w, b);
    }

    /// <summary>Mean (smoothed) cross-entropy plus λ/2·‖W‖², and its gradient, at θ = [W (row-major), b].</summary>
    private static (double Value, double[] Gradient) Objective(double[] theta, Tensor x, Tensor targets, int k, int f, double l2)
    {
        using var scope = NewDisposeScope();
        using var t = torch.tensor(theta);
        var w = t.narrow(0, 0, (long)k * f).view(k, f);
        var b = t.narrow(0, (long)k * f, k);
        var logp = nn.functional.log_softmax(x.mm(w.t()) + b, 1);
        long n = x.shape[0];
        double value = -(targets * logp).sum().item<double>() / n + l2 / 2 * w.square().sum().item<double>();
        var g = (logp.exp() - targets) / n;
        var gradient = torch.cat([(g.t().mm(x) + w * l2).flatten(), g.sum(dim: 0)]);
        return (value, gradient.data<double>().ToArray());
    }

    /// <summary>Cross-entropy (unsmoothed, no penalty) and accuracy of θ on features and labels.</summary>
    private static (double Loss, double Accuracy) Score(double[] theta, Tensor x, Tensor y, int k, int f)
    {
        using var scope = NewDisposeScope();
        using var t = torch.tensor(theta);
        var logits = x.mm(t.narrow(0, 0, (long)k * f).view(k, f).t()) + t.narrow(0, (long)k * f, k);
        double loss = nn.functional.cross_entropy(logits, y).item<double>();
        double accuracy = logits.argmax(1).eq(y).to_type(ScalarType.Float64).mean().item<double>();
        return (loss, accuracy);
    }

    /// <summary>L-BFGS from <paramref name="theta"/> (updated in place): the objective at the end, the iterations,
    /// and whether a tolerance (not the cap) ended it.</summary>
    internal static (double Value, int Iterations, bool Converged) Minimise(double[] theta, Func<double[], (double, double[])> objective,
        CancellationToken cancellation = default)
    {
        int n = theta.Length;
        var (value, gradient) = objective(theta);
        var s = new List<double[]>();
        var yv = new List<double[]>();
        var rho = new List<double>();
        var direction = new double[n];
        var trial = new double[n];
        for (int it = 0; it < MaxIterations; it++)
        {
            if (MaxAbs(gradient) < GradientTolerance) return (value, it, true);
            cancellation.ThrowIfCancellationRequested();
            // Two-loop recursion: direction = −H·g with H the inverse-Hessian estimate of the last pairs.
            Array.Copy(gradient, direction, n);
            var alpha = new double[s.Count];
            for (int j = s.Count - 1; j >= 0; j--)
            {
                alpha[j] = rho[j] * Dot(s[j], direction);
                Axpy(-alpha[j], yv[j], direction);
            }
            double gamma = s.Count > 0 ? Dot(s[^1], yv[^1]) / Dot(yv[^1], yv[^1]) : 1 / Math.Max(1, Math.Sqrt(Dot(gradient, gradient)));
            for (int j = 0; j < n; j++) direction[j] *= gamma;
            for (int j = 0; j < s.Count; j++)
            {
                double beta = rho[j] * Dot(yv[j], direction);
                Axpy(alpha[j] - beta, s[j], direction);
            }
            for (int j = 0; j < n; j++) direction[j] = -direction[j];
            double slope = Dot(gradient, direction);
            if (slope >= 0)
            {
                // Not a descent direction (curvature pairs gone stale): restart from steepest descent.
                s.Clear(); yv.Clear(); rho.Clear();
                for (int j = 0; j < n; j++) direction[j] = -gradient[j];
                slope = -Dot(gradient, gradient);
            }
            double step = 1, newValue = 0;
            double[] newGradient = gradient;
            bool accepted = false;
            for (int tries = 0; tries < 40; tries++, step *= 0.5)
            {
                for (int j = 0; j < n; j++) trial[j] = theta[j] + step * direction[j];
                (newValue, newGradient) = objective(trial);
                if (double.IsFinite(newValue) && newValue <= value + 1e-4 * step * slope) { accepted = true; break; }
            }
            if (!accepted) return (value, it, true); // no decrease left at float64 precision
            var sk = new double[n];
            var yk = new double[n];
            for (int j = 0; j < n; j++)
            {
                sk[j] = trial[j] - theta[j];
                yk[j] = newGradient[j] - gradient[j];
            }
            double sy = Dot(sk, yk);
            if (sy > 1e-12)
            {
                if (s.Count == History) { s.RemoveAt(0); yv.RemoveAt(0); rho.RemoveAt(0); }
                s.Add(sk); yv.Add(yk); rho.Add(1 / sy);
            }
            Array.Copy(trial, theta, n);
            double decrease = value - newValue;
            (value, gradient) = (newValue, newGradient);
            if (decrease <= RelativeTolerance * Math.Max(1, Math.Abs(value))) return (value, it + 1, true);
        }
        return (value, MaxIterations, MaxAbs(gradient) < GradientTolerance);
    }

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    private static void Axpy(double a, double[] x, double[] y)
    {
        for (int i = 0; i < x.Length; i++) y[i] += a * x[i];
    }

    private static double MaxAbs(double[] v)
    {
        double m = 0;
        foreach (var e in v) m = Math.Max(m, Math.Abs(e));
        return m;
    }
}
