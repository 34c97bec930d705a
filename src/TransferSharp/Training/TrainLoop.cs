using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>
/// What the loop trains: a module, its batches (inputs of type <typeparamref name="TInput"/>, class indices as targets),
/// its stages, its validation. Vision tasks feed images or cached features to a graph; a text classifier feeds token ids
/// and lengths to its network.
/// </summary>
internal interface ITrainingTask<TInput> where TInput : IDisposable
{
    nn.Module Module { get; }
    int TrainCount { get; }
    bool HasValidation { get; }

    /// <summary>The weight matrices <see cref="TrainOptions.L2"/> penalises.</summary>
    IEnumerable<Tensor> L2Parameters { get; }

    /// <summary>Where the module's dropout masks come from (the loop sets each epoch's and restores the previous).</summary>
    Generator? DropoutGenerator { get; set; }

    void EnterStage(int stage);

    /// <summary>Called at the start of every epoch, after <see cref="EnterStage"/> (also when a run resumes mid-stage), with
    /// the epoch's index within its stage: a task that changes what trains from epoch to epoch does it here.</summary>
    void EnterEpoch(int stage, int epochOfStage) { }
    IReadOnlyList<ParamGroup> ParamGroups(int stage, TrainOptions options);
    IEnumerable<(TInput X, Tensor Y)> TrainBatches(int epoch, CancellationToken cancellation);
    Tensor Forward(TInput x);
    (double Loss, double Accuracy) Validate(IProgress<ProgressInfo>? progress, CancellationToken cancellation);
    bool Persist(string tensorName);
}

/// <summary>Where checkpoints go and whether to resume.</summary>
public sealed record CheckpointOptions
{
    /// <summary>Checkpoint file (written after every epoch; null: none).</summary>
    public string? Path { get; init; }

    /// <summary>Continue from the checkpoint if it exists (settings must match).</summary>
    public bool Resume { get; init; }

    /// <summary>Delete the checkpoint when training completes.</summary>
    public bool DeleteWhenDone { get; init; } = true;
}

/// <summary>
/// The one epoch loop of vision (head training, fine-tuning) and text classifiers: stages, optimizer steps with gradient
/// accumulation, the learning-rate schedule, label smoothing and L2, validation, the best epoch,
/// early stopping, and a checkpoint after every epoch from which a killed run resumes exactly.
/// </summary>
internal static class TrainLoop
{
    public static TrainingState Run<TInput>(ITrainingTask<TInput> task, TrainOptions options, string fingerprintSource, CheckpointOptions checkpoint,
        Action<EpochRecord>? onEpoch, IProgress<ProgressInfo>? progress, CancellationToken cancellation) where TInput : IDisposable
    {
        int total = options.Epochs;
        int headEpochs = options.ResolvedHeadEpochs;
        int StageOf(int e) => e < headEpochs ? 1 : 2;
        var fingerprint = Fingerprint(fingerprintSource);
        var model = task.Module;
        var state = new TrainingState { Fingerprint = fingerprint };
        var best = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        List<(string, Tensor)>? resumedOptimizer = null, resumedAverage = null;
        Checkpoint.Loaded? loaded = null;
        var clock = Stopwatch.StartNew();
        try
        {
            if (checkpoint.Resume && checkpoint.Path is { } cp && File.Exists(cp))
            {
                loaded = Checkpoint.Load(cp);
                if (loaded.State.Fingerprint != fingerprint)
                    throw new ModelFileException(cp, "this checkpoint was written by a run with other settings, model or data; start without resuming, or delete it");
                state = loaded.State;
                try
                {
                    // Exact over the tensors this task persists (a head-only run saves the head alone).
                    StateLoader.Load(model, loaded.ModelTensors, LoadPolicy.Exact, cp, include: task.Persist);
                }
                catch (StateDictMismatchException e)
                {
                    throw new ModelFileException(cp, $"the checkpoint's tensors do not match the model being trained (another architecture or head?): {e.Report.DescribeProblems()}", e);
                }
                foreach (var (name, t) in loaded.BestTensors) best[name] = t.clone().DetachFromDisposeScope();
                resumedOptimizer = loaded.OptimizerTensors.ToList();
                resumedAverage = loaded.AverageTensors.ToList();
            }

            Optimizer? optimizer = null;
            WeightAverage? average = null;
            LearningRateSchedule? schedule = null;
            int currentStage = 0;
            int batchesPerEpoch = (task.TrainCount + options.BatchSize - 1) / options.BatchSize;
            long stepsPerEpoch = (batchesPerEpoch + options.AccumulationSteps - 1) / options.AccumulationSteps;
            try
            {
                for (int e = state.NextEpoch; e < total; e++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    int stage = StageOf(e);
                    if (stage != currentStage)
                    {
                        task.EnterStage(stage);
                        optimizer?.Dispose();
                        optimizer = new Optimizer(options.Optimizer, task.ParamGroups(stage, options), options.WeightDecay, options.Momentum);
                        bool resuming = stage == state.Stage && resumedOptimizer is not null;
                        if (resuming) optimizer.LoadState(resumedOptimizer!, state.StageSteps);
                        else
                        {
                            state.Stage = stage;
                            state.StageSteps = 0;
                            state.BadEpochs = 0;
                        }
                        average?.Dispose();
                        average = options.EmaDecay > 0 ? new WeightAverage(model, options.EmaDecay, task.Persist, resuming && resumedAverage is { Count: > 0 } ? resumedAverage : null, checkpoint.Path) : null;
                        resumedOptimizer = null;
                        resumedAverage = null;
                        currentStage = stage;
                        int stageEpochs = stage == 1 ? headEpochs : total - headEpochs;
                        schedule = new LearningRateSchedule(options.Schedule, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch),
                            stageEpochs * stepsPerEpoch, stepsPerEpoch, options.StepEpochs, options.StepGamma, options.MinLearningRateFactor);
                    }
                    task.EnterEpoch(stage, stage == 1 ? e : e - headEpochs);
                    var epochClock = Stopwatch.StartNew();
                    double trainLoss, trainAcc, rate, wait;
                    using (var generator = DropoutGenerator(options.Seed, e))
                    {
                        var previous = task.DropoutGenerator;
                        task.DropoutGenerator = generator;
                        try { (trainLoss, trainAcc, rate, wait) = TrainEpoch(task, options, optimizer!, schedule!, average, state, e, total, progress, cancellation); }
                        finally { task.DropoutGenerator = previous; }
                    }
                    double? valLoss = null, valAcc = null;
                    bool improved;
                    // With a weight average, validation and the best epoch's snapshot see the average.
                    using (average?.Swapped())
                    {
                        if (task.HasValidation)
                        {
                            var (l, a) = task.Validate(progress, cancellation);
                            (valLoss, valAcc) = (l, a);
                        }
                        improved = valAcc is { } acc && (acc > state.BestAccuracy || (acc == state.BestAccuracy && valLoss!.Value < state.BestLoss));
                        if (improved) CopyState(model, task, best);
                    }
                    var record = new EpochRecord(e + 1, stage, trainLoss, trainAcc, valLoss, valAcc,
                        optimizer!.Groups[0].LearningRate, epochClock.Elapsed.TotalSeconds, rate, wait);
                    state.History.Add(record);
                    if (improved)
                    {
                        state.BestAccuracy = valAcc!.Value;
                        state.BestLoss = valLoss!.Value;
                        state.BestEpoch = e + 1;
                        state.BadEpochs = 0;
                    }
                    else if (task.HasValidation) state.BadEpochs++;
                    else state.BestEpoch = e + 1;
                    state.NextEpoch = e + 1;
                    if (options.Patience > 0 && state.BadEpochs >= options.Patience)
                    {
                        if (stage == 1 && headEpochs < total) state.NextEpoch = headEpochs;
                        else
                        {
                            state.NextEpoch = total;
                            state.StoppedEarly = true;
                        }
                        e = state.NextEpoch - 1;
                    }
                    state.Seconds += epochClock.Elapsed.TotalSeconds;
                    if (checkpoint.Path is { } path)
                    {
                        var persisted = model.state_dict().Where(kv => task.Persist(kv.Key)).Select(kv => (kv.Key, kv.Value)).ToList();
                        Checkpoint.Save(path, state, persisted, best.Select(kv => (kv.Key, kv.Value)), optimizer, average?.Tensors);
                    }
                    onEpoch?.Invoke(record);
                }
                // A run without validation ends on the average of its last stage.
                if (best.Count == 0) average?.CopyInto();
            }
            finally
            {
                optimizer?.Dispose();
                average?.Dispose();
            }
            if (best.Count > 0) StateLoader.Load(model, best, LoadPolicy.Exact, "the best epoch's snapshot", include: task.Persist);
            return state;
        }
        finally
        {
            loaded?.Dispose();
            foreach (var t in best.Values) t.Dispose();
        }
    }

    /// <summary>
    /// The generator of an epoch's dropout masks, seeded from the run's seed and the epoch (through
    /// <see cref="Data.DataLoader.MixSeed"/>, on a stream of its own: the shuffle uses −1, samples 0 and up). A run resumed
    /// at an epoch boundary draws exactly what the uninterrupted run drew, and LibTorch's global generator stays the host's.
    /// </summary>
    internal static Generator DropoutGenerator(int seed, int epoch) => new((ulong)Data.DataLoader.MixSeed(seed, epoch, -2));

    private static (double Loss, double Accuracy, double ImagesPerSecond, double LoaderWaitSeconds) TrainEpoch<TInput>(ITrainingTask<TInput> task, TrainOptions options, Optimizer optimizer, LearningRateSchedule schedule,
        WeightAverage? average, TrainingState state, int epoch, int total, IProgress<ProgressInfo>? progress, CancellationToken cancellation) where TInput : IDisposable
    {
        var model = task.Module;
        model.train();
        optimizer.ZeroGrad();
        double lossSum = 0;
        long correct = 0, seen = 0;
        int micro = 0;
        var clock = Stopwatch.StartNew();
        var l2Params = options.L2 > 0 ? task.L2Parameters.ToArray() : [];

        void Step()
        {
            double factor = schedule.Factor(state.StageSteps);
            foreach (var g in optimizer.Groups) g.LearningRate = g.BaseLearningRate * factor;
            optimizer.Step();
            optimizer.ZeroGrad();
            average?.Update(state.StageSteps);
            state.StageSteps++;
        }

        // The time spent asking for the next batch is the time the steps waited for the loader.
        var waited = TimeSpan.Zero;
        using var batches = task.TrainBatches(epoch, cancellation).GetEnumerator();
        while (true)
        {
            long asked = Stopwatch.GetTimestamp();
            bool more = batches.MoveNext();
            waited += Stopwatch.GetElapsedTime(asked);
            if (!more) break;
            var (x, y) = batches.Current;
            using (x)
            using (y)
            using (var scope = NewDisposeScope())
            {
                var logits = task.Forward(x);
                var loss = nn.functional.cross_entropy(logits, y, label_smoothing: options.LabelSmoothing);
                foreach (var w in l2Params) loss = loss + w.square().sum() * (options.L2 / 2);
                var scaled = options.AccumulationSteps > 1 ? loss / options.AccumulationSteps : loss;
                scaled.backward();
                long n = y.shape[0];
                lossSum += loss.item<float>() * n;
                // Mixed batches (mixup, CutMix) carry soft targets [N, classes]; their accuracy counts the larger share.
                using (no_grad()) correct += logits.argmax(1).eq(y.dim() == 2 ? y.argmax(1) : y).sum().item<long>();
                seen += n;
            }
            if (++micro % options.AccumulationSteps == 0) Step();
            progress?.Report(new ProgressInfo("train", seen, task.TrainCount, seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds), epoch + 1, total, lossSum / seen));
            cancellation.ThrowIfCancellationRequested();
        }
        if (micro % options.AccumulationSteps != 0) Step();
        if (seen == 0) throw new TransferSharpException("no training sample could be loaded in this epoch (every image was unreadable?)");
        return (lossSum / seen, correct / (double)seen, seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds), waited.TotalSeconds);
    }

    private static void CopyState<TInput>(nn.Module model, ITrainingTask<TInput> task, Dictionary<string, Tensor> best) where TInput : IDisposable
    {
        using var _ = no_grad();
        foreach (var (name, t) in model.state_dict())
        {
            if (!task.Persist(name)) continue;
            if (best.TryGetValue(name, out var b)) b.copy_(t);
            else best[name] = DetachedCopy(t);
        }
    }

    /// <summary>A copy of <paramref name="t"/> outside autograd and any dispose scope, owned by the caller; the intermediate
    /// detached view is disposed, not left to the finalizer thread (../shared/notes/torchsharp-memory.md).</summary>
    internal static Tensor DetachedCopy(Tensor t)
    {
        using var detached = t.detach();
        return detached.clone().DetachFromDisposeScope();
    }

    private static string Fingerprint(string source) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(source)))[..16];
}
