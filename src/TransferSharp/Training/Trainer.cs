using System.Diagnostics;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

using TransferSharp.Runtime;

namespace TransferSharp.Training;

/// <summary>Where checkpoints go, and what to report, for any run of the shared training loop: <see cref="Trainer"/>'s and
/// text classifiers'.</summary>
public sealed record TrainRunOptions
{
    /// <summary>Checkpointing and resuming.</summary>
    public CheckpointOptions Checkpoint { get; init; } = new();

    /// <summary>Called after every epoch.</summary>
    public Action<EpochRecord>? OnEpoch { get; init; }

    /// <summary>Progress of extraction, training and validation.</summary>
    public IProgress<ProgressInfo>? Progress { get; init; }

    /// <summary>Unreadable images are collected here (see <see cref="LoaderOptions.OnBadImage"/>; vision training only).</summary>
    public BadImageLog BadImages { get; init; } = new();
}

/// <summary>
/// Trains a <see cref="VisionModel"/> in place on a data set: a new head on cached features (<see cref="TrainMode.Head"/>)
/// or two-stage fine-tuning (<see cref="TrainMode.FineTune"/>). The model's classifier is made for the data's classes
/// (the reference model with that class count, <see cref="ModelGraph.WithClassifier"/>; layers that stay the same keep
/// their weights, so nothing is copied), then trained; afterwards the model carries the class names, its new
/// architecture and the training record, ready for <see cref="VisionModel.Save"/>. Training changes the model it is
/// given, as Keras' <c>fit</c> and fastai's <c>fine_tune</c> do: load the model again for another run from the same start.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="model"/> in place and returns what training did (also in <see cref="VisionModel.Training"/>).
    /// Without <paramref name="validation"/>, <see cref="TrainOptions.ValidationSplit"/> of the training data is held out
    /// (stratified, seeded). Throws <see cref="DatasetException"/> for unusable data (fewer than two classes, a class
    /// without samples) before the model is touched, and <see cref="OperationCanceledException"/> when cancelled (the last
    /// checkpoint stays intact; the model holds what training had reached).
    /// </summary>
    public static TrainingRecord Train(VisionModel model, Dataset train, Dataset? validation, TrainOptions options, TrainRunOptions? run = null,
        CancellationToken cancellation = default)
    {
        options.Validate();
        run ??= new TrainRunOptions();
        if (options.Mode == TrainMode.Auto) return TrainAuto(model, train, validation, options, run, cancellation);
        if (options is { Mode: TrainMode.FineTune, HeadEpochs: null, HeadSolver: HeadSolver.Lbfgs, Head.Kind: HeadKind.Linear })
            return FineTuneFromSplitHead(model, train, validation, options, run, cancellation);
        var clock = Stopwatch.StartNew();
        var classes = train.ClassNames;
        CheckClasses(train);
        if (validation is not null) validation = validation.AlignTo(classes);
        else if (options.ValidationSplit > 0)
        {
            var counts = train.ClassCounts();
            if (counts.Min() < 2)
                throw new DatasetException($"{train.Origin}: class '{classes[Array.IndexOf(counts, counts.Min())]}' has {counts.Min()} sample(s), too few to hold out validation data; add images, give a separate validation set, or set ValidationSplit to 0");
            (train, validation) = train.StratifiedSplit(options.ValidationSplit, options.Seed);
        }
        var (trainSet, validationSet) = (train, validation);
        var record = Fit(model, classes, options, run, train.Origin, train.Count, validation?.Count ?? 0, clock, cancellation,
            () => CreateTask(model, trainSet, validationSet, options, run, cancellation));
        return RefitsClassifier(options) && validationSet is not null
            ? RefitClassifier(model, trainSet, validationSet, options, run, cancellation)
            : record;
    }

    /// <summary>Fine-tuning whose classifier is refitted at the end (<see cref="TrainOptions.RefitHead"/>, a linear head).</summary>
    private static bool RefitsClassifier(TrainOptions options) =>
        options is { Mode: TrainMode.FineTune, RefitHead: true } && LogisticHead.Applies(options with { Mode = TrainMode.Head });

    /// <summary>After fine-tuning (the best validation epoch kept), the classifier is fitted again as <see cref="TrainMode.Head"/>
    /// fits a head — L-BFGS on the fine-tuned body's features of the unaugmented images, λ chosen on the validation data,
    /// then refitted on training + validation data — and replaces the one fine-tuning trained (under label smoothing, on
    /// augmented crops, of the training split only). Measured on seven fine-tuned models of two data sets: +0.4 to +4.0 points
    /// of test accuracy, lower test loss in every one (docs/workflows.md). The record stays fine-tuning's (its validation
    /// scores are those of the epochs, so <see cref="TrainMode.Auto"/> still compares honestly), with the fit in
    /// <see cref="TrainingRecord.ClassifierRefit"/>.</summary>
    private static TrainingRecord RefitClassifier(VisionModel model, Dataset train, Dataset validation, TrainOptions options, TrainRunOptions run,
        CancellationToken cancellation)
    {
        var tuned = model.Training!;
        var description = model.Description;
        // Head mode's own fit: no label smoothing (fine-tuning's would flatten the fit: 88.8 % against 89.2 % on the garments),
        // λ searched rather than fine-tuning's L2.
        var fit = Train(model, train, validation, options with { Mode = TrainMode.Head, HeadSolver = HeadSolver.Lbfgs, LabelSmoothing = 0, L2 = 0 },
            run with { Checkpoint = new CheckpointOptions(), OnEpoch = null }, cancellation);
        model.Description = description;
        model.Training = tuned with { ClassifierRefit = fit.HeadFit, Seconds = tuned.Seconds + fit.Seconds };
        return model.Training;
    }

    /// <summary>Epochs of the fine-tuning <see cref="TrainMode.Auto"/> tries: the recipe's (<see cref="TrainOptions.FineTuneEpochs"/>).</summary>
    public const int AutoFineTuneEpochs = TrainOptions.FineTuneEpochs;

    /// <summary>Images <see cref="TrainMode.Auto"/> times the frozen body on to estimate fine-tuning's time.</summary>
    private const int AutoProbeImages = 64;

    /// <summary><see cref="TrainMode.Auto"/>: the head, then fine-tuning from it when the data is large enough and the
    /// estimated time fits <see cref="TrainOptions.AutoBudget"/>, kept only when the validation split says it helps. The
    /// split is the same for both (seeded), and both are scored the same way: the validation accuracy of an L-BFGS classifier
    /// fitted on the training split's features — the pretrained body's for the head, the fine-tuned body's for fine-tuning
    /// (its <see cref="TrainingRecord.ClassifierRefit"/> search; the best epoch's accuracy when there is none). Whichever
    /// is kept is then refitted on training + validation data (<see cref="TrainOptions.RefitHead"/>), as the other modes are.</summary>
    private static TrainingRecord TrainAuto(VisionModel model, Dataset train, Dataset? validation, TrainOptions options, TrainRunOptions run,
        CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var description = model.Description;
        TrainingRecord Keep(TrainingRecord record, string decision)
        {
            model.Training = record with { Decision = decision, Seconds = clock.Elapsed.TotalSeconds };
            model.Description = description;
            return model.Training;
        }
        TrainingRecord HeadOnly(string why) => Keep(Train(model, train, validation, options with { Mode = TrainMode.Head }, run, cancellation), why);
        int trainImages = validation is null ? train.Count - (int)Math.Round(train.Count * options.ValidationSplit) : train.Count;
        if (trainImages < options.AutoMinTrainImages)
            return HeadOnly($"head only: {trainImages} training images, fewer than the {options.AutoMinTrainImages} for which fine-tuning is tried");
        if (validation is null && options.ValidationSplit <= 0)
            return HeadOnly("head only: without validation data nothing can tell whether fine-tuning helps");

        // Fine-tuning's time, estimated before any head is fitted (so a head kept for the budget's sake extracts its features
        // once): a timed pass of the frozen body over a few training images; an epoch passes the training images forward and
        // backward (about three forward passes' work, plus augmentation) and the validation images forward once.
        int validationImages = validation?.Count ?? train.Count - trainImages;
        double perImage = FeatureExtractor.SecondsPerImage(model, train, HeadTask.ExtractOptionsFor(options), AutoProbeImages, cancellation);
        var estimate = TimeSpan.FromSeconds(perImage * AutoFineTuneEpochs * (3 * trainImages + validationImages));
        if (estimate > options.AutoBudget)
            return HeadOnly($"head: fine-tuning {AutoFineTuneEpochs} epochs of {trainImages} images would take about {estimate.TotalMinutes:F0} min, over the budget of {options.AutoBudget.TotalMinutes:0.#} min");

        var head = FitSplitHead(model, train, validation, options, run, cancellation);
        if (head.BestValidationAccuracy is not { } headAccuracy)
            return HeadOnly("head only: without validation data nothing can tell whether fine-tuning helps");
        var tuneOptions = TrainOptions.FineTuneFromHead(model.Architecture!.Head, AutoFineTuneEpochs) with
        {
            ValidationSplit = options.ValidationSplit, Seed = options.Seed, Device = options.Device, Loader = options.Loader,
            EmaDecay = options.EmaDecay, Mixup = options.Mixup, CutMix = options.CutMix, RefitHead = options.RefitHead,
        };

        var snapshot = model.Module.state_dict().ToDictionary(kv => kv.Key, kv => TrainLoop.DetachedCopy(kv.Value), StringComparer.Ordinal);
        try
        {
            var tuned = FineTuneFromSplitHead(model, train, validation, tuneOptions, run, cancellation, head);
            double? tunedAccuracy = tuned.ClassifierRefit is { } refit ? refit.ChosenValidationAccuracy : tuned.BestValidationAccuracy;
            if (tunedAccuracy > headAccuracy)
                return Keep(tuned, $"fine-tuned: {tunedAccuracy:P1} validation accuracy after {AutoFineTuneEpochs} epochs from the head, which had {headAccuracy:P1}");
            StateLoader.Load(model.Module, snapshot, LoadPolicy.Exact, "the head's weights");
            foreach (var p in model.Module.parameters()) p.requires_grad = false;
            return RefitKept(head, $"head: fine-tuning reached {tunedAccuracy:P1} validation accuracy, not above the head's {headAccuracy:P1}, so the head was kept");
        }
        finally
        {
            foreach (var t in snapshot.Values) t.Dispose();
        }

        // The head is kept: fitted again as head mode fits it (refitted on training + validation data unless told not to).
        TrainingRecord RefitKept(TrainingRecord split, string decision) =>
            options.RefitHead ? HeadOnly(decision) : Keep(split, decision);
    }

    /// <summary>The L-BFGS head on cached features of the training split, not refitted on the validation data: fine-tuning
    /// that starts from it is still judged honestly on that data (its score and best epoch), and <see cref="TrainMode.Auto"/>
    /// compares the two on it. It writes no checkpoint, and leaves the run's checkpoint (fine-tuning's, perhaps resumed) alone.</summary>
    private static TrainingRecord FitSplitHead(VisionModel model, Dataset train, Dataset? validation, TrainOptions options, TrainRunOptions run,
        CancellationToken cancellation) =>
        Train(model, train, validation, options with { Mode = TrainMode.Head, HeadSolver = HeadSolver.Lbfgs, RefitHead = false },
            run with { Checkpoint = new CheckpointOptions() }, cancellation);

    /// <summary><see cref="TrainMode.FineTune"/> without <see cref="TrainOptions.HeadEpochs"/>: stage 1 on cached features (the
    /// L-BFGS head of the training split, seconds instead of epochs over the frozen body), then stage 2 from that head for
    /// every epoch, judged on the validation data the head never saw. The record is stage 2's, with the head fit's λ search
    /// in <see cref="TrainingRecord.HeadFit"/>. (Training again on training + validation images once the split has chosen,
    /// as the head is refitted, doubled the time, gained nothing on the MNIST digits and cost the garments 1.4 points:
    /// docs/workflows.md.)</summary>
    private static TrainingRecord FineTuneFromSplitHead(VisionModel model, Dataset train, Dataset? validation, TrainOptions options,
        TrainRunOptions run, CancellationToken cancellation, TrainingRecord? splitHead = null)
    {
        var clock = Stopwatch.StartNew();
        var head = splitHead ?? FitSplitHead(model, train, validation, options, run, cancellation);
        var description = model.Description;
        var tuned = Train(model, train, validation, options with { HeadEpochs = 0 }, run, cancellation);
        model.Description = description;
        model.Training = tuned with { Options = options, Source = head.Source, HeadFit = head.HeadFit, Seconds = clock.Elapsed.TotalSeconds };
        return model.Training;
    }

    /// <summary>The task of <see cref="TrainOptions.Mode"/>: cached features for head mode, images for fine-tuning.</summary>
    internal static ITrainingTask<Tensor> CreateTask(VisionModel model, Dataset train, Dataset? validation, TrainOptions options, TrainRunOptions run,
        CancellationToken cancellation) => options.Mode == TrainMode.Head
            ? HeadTask.Create(model, train, validation, options, run, cancellation)
            : new FineTuneTask(model.Module, model.Preprocessing, train, validation, options, run);

    /// <summary>Makes <paramref name="model"/>'s classifier one for <paramref name="classes"/> (seeded, in place: layers the
    /// new graph keeps keep their weights) and moves it to the options' device; returns the architecture it now has.</summary>
    internal static ModelArchitecture PrepareModel(VisionModel model, IReadOnlyList<string> classes, TrainOptions options)
    {
        var baseArch = model.Architecture ?? throw new TransferSharpException(
            $"{model.Description}: this model's graph cannot be rebuilt from a name, so a trained model file could not be loaded again; train from a zoo model or a TransferSharp model file (extracting features works)");
        var arch = baseArch with { NumClasses = classes.Count, Head = options.Head };
        var module = model.Module;
        var graph = arch.BuildGraph();
        // A head trained for exactly these classes continues; any other (ImageNet's, another data set's) starts afresh,
        // drawn from a generator seeded with the run's seed.
        using (var generator = new Generator(unchecked((ulong)options.Seed)))
            module.Adopt(graph, model.Labels.SequenceEqual(classes) ? null : graph.HeadNodes, generator);
        module.to(TorchRuntime.ParseDevice(options.Device));
        module.BatchNormMode = options.FreezeBatchNorm ? BatchNormMode.Eval : BatchNormMode.FollowFreeze;
        model.Architecture = arch;
        model.Labels = classes.ToArray();
        return arch;
    }

    /// <summary>
    /// Trains a new head in place on features already extracted from <paramref name="model"/>'s body (by
    /// <see cref="FeatureExtractor"/> with <see cref="ExtractOptions.PreLogits"/>): seconds for tens of thousands of
    /// samples. Validation uses <paramref name="validation"/> only (no split). Returns what training did.
    /// </summary>
    public static TrainingRecord TrainHead(VisionModel model, FeatureSet train, FeatureSet? validation, TrainOptions options, TrainRunOptions? run = null,
        CancellationToken cancellation = default)
    {
        options = options with { Mode = TrainMode.Head, ValidationSplit = 0 };
        options.Validate();
        run ??= new TrainRunOptions();
        var clock = Stopwatch.StartNew();
        var classes = train.ClassNames;
        if (classes.Count < 2) throw new DatasetException($"features of {classes.Count} class(es); a classifier needs at least 2");
        if (train.Dimension != model.Module.Graph.PreLogitsSize)
            throw new TransferSharpException($"the features have {train.Dimension} values per sample but {model.Description}'s classifier takes {model.Module.Graph.PreLogitsSize} (its pre-logits)");
        if (validation is not null && !validation.ClassNames.SequenceEqual(classes))
            throw new TransferSharpException("training and validation features must have the same class names, in the same order");
        return Fit(model, classes, options, run, "features", train.Count, validation?.Count ?? 0, clock, cancellation,
            () => new HeadTask(model.Module, train, validation, options));
    }

    private static TrainingRecord Fit(VisionModel source, IReadOnlyList<string> classes, TrainOptions options, TrainRunOptions run, string origin,
        int trainCount, int validationCount, Stopwatch clock, CancellationToken cancellation, Func<ITrainingTask<Tensor>> createTask)
    {
        var sourceDescription = source.Description;
        var arch = PrepareModel(source, classes, options);
        var model = source.Module;
        var task = createTask();
        // Decoding threads and prefetch change no result: a resumed run may use others.
        var fingerprint = string.Join("\n", TrainingJson.Serialize(options with { Device = "cpu", Loader = options.Loader with { Workers = 0, Prefetch = 2 } }), TrainingJson.Serialize(arch),
            sourceDescription, origin, trainCount, validationCount, string.Join(",", classes));
        HeadFitRecord? headFit = null;
        TrainingState state;
        try
        {
            if (task is HeadTask head && LogisticHead.Applies(options))
            {
                head.EnterStage(1); // the body frozen, as epoch training leaves it: the record lists the groups trained
                state = LogisticHead.Fit(model, head.TrainX, head.TrainY, head.ValX, head.ValY, options, run.OnEpoch, run.Progress, cancellation, out headFit,
                    refit: options.RefitHead);
            }
            else state = TrainLoop.Run(task, options, fingerprint, run.Checkpoint, run.OnEpoch, run.Progress, cancellation);
        }
        finally
        {
            model.eval();
            model.to(CPU);
            (task as IDisposable)?.Dispose(); // its cached features: freed now, not left to the finalizer thread
        }
        var record = new TrainingRecord
        {
            Options = options,
            Source = sourceDescription,
            Data = origin,
            TrainSamples = trainCount,
            ValidationSamples = validationCount,
            BadImages = run.BadImages.Count,
            History = state.History,
            BestEpoch = state.BestEpoch,
            BestValidationAccuracy = double.IsFinite(state.BestAccuracy) ? state.BestAccuracy : null,
            StoppedEarly = state.StoppedEarly,
            HeadFit = headFit,
            TrainedGroups = model.GroupState().Where(g => g.Trainable > 0).Select(g => g.Group).ToArray(),
            Seconds = clock.Elapsed.TotalSeconds,
        };
        foreach (var p in model.parameters()) p.requires_grad = false;
        if (run.Checkpoint is { DeleteWhenDone: true, Path: { } cp } && File.Exists(cp)) File.Delete(cp);
        source.Training = record;
        source.Description = $"{sourceDescription} trained on {origin}";
        return record;
    }

    private static void CheckClasses(Dataset train)
    {
        if (train.ClassNames.Count < 2)
            throw new DatasetException($"{train.Origin}: {train.ClassNames.Count} class{(train.ClassNames.Count == 1 ? $" ('{train.ClassNames[0]}')" : "es")}; a classifier needs at least 2 (one subfolder per class)");
        var counts = train.ClassCounts();
        var empty = train.ClassNames.Where((_, i) => counts[i] == 0).ToArray();
        if (empty.Length > 0) throw new DatasetException($"{train.Origin}: no training samples for class{(empty.Length > 1 ? "es" : "")} {string.Join(", ", empty)}");
    }

    /// <summary>Cross-entropy and accuracy of a model's logits over batches, in eval mode without gradients.</summary>
    internal static (double Loss, double Accuracy) Score<TInput>(nn.Module model, IEnumerable<(TInput X, Tensor Y)> batches, Func<TInput, Tensor> forward,
        string phase, long total, IProgress<ProgressInfo>? progress, CancellationToken cancellation) where TInput : IDisposable
    {
        model.eval();
        using var _ = no_grad();
        double loss = 0;
        long correct = 0, seen = 0;
        var clock = Stopwatch.StartNew();
        foreach (var (x, y) in batches)
        {
            using (x)
            using (y)
            using (var scope = NewDisposeScope())
            {
                var logits = forward(x);
                loss += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(y).sum().item<long>();
                seen += y.shape[0];
            }
            progress?.Report(new ProgressInfo(phase, seen, total, seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
            cancellation.ThrowIfCancellationRequested();
        }
        return seen == 0 ? (double.NaN, double.NaN) : (loss / seen, correct / (double)seen);
    }

    /// <summary>The tensor on the device (itself when it is there already; otherwise a copy, and the original is disposed).</summary>
    private static Tensor OnDevice(Tensor t, Device device)
    {
        if (TorchRuntime.IsOn(t, device)) return t;
        var moved = t.to(device);
        t.Dispose();
        return moved;
    }

    /// <summary>Head training on features extracted once by the frozen body (eval transform, no augmentation).</summary>
    private sealed class HeadTask : ITrainingTask<Tensor>, IDisposable
    {
        private readonly Tensor _trainX, _trainY;
        private readonly Tensor? _valX, _valY;
        private readonly TrainOptions _options;
        private readonly Device _device;

        public HeadTask(GraphModule model, FeatureSet train, FeatureSet? val, TrainOptions options)
        {
            Model = model;
            _options = options;
            _device = TorchRuntime.ParseDevice(options.Device);
            _trainX = OnDevice(train.ToTensor(), _device);
            _trainY = OnDevice(train.LabelTensor(), _device);
            if (val is { Count: > 0 })
            {
                _valX = OnDevice(val.ToTensor(), _device);
                _valY = OnDevice(val.LabelTensor(), _device);
            }
            TrainCount = train.Count;
        }

        /// <summary>How head training extracts its features (pre-logits, the run's device and loader); <see cref="TrainMode.Auto"/>
        /// times the same extraction for its estimate.</summary>
        public static ExtractOptions ExtractOptionsFor(TrainOptions options) =>
            new() { Device = options.Device, Loader = options.Loader with { BatchSize = Math.Max(options.Loader.BatchSize, 1) }, PreLogits = true };

        public static HeadTask Create(VisionModel model, Dataset train, Dataset? val, TrainOptions options, TrainRunOptions run, CancellationToken ct)
        {
            var features = FeatureExtractor.ExtractEach(model, val is null ? [train] : [train, val], ExtractOptionsFor(options), run.BadImages, run.Progress, ct);
            return new HeadTask(model.Module, features[0], val is null ? null : features[1], options);
        }

        public GraphModule Model { get; }
        public nn.Module Module => Model;
        public IEnumerable<Tensor> L2Parameters => Model.HeadParameters().Select(p => p.Parameter).Where(p => p.dim() > 1);
        public Generator? DropoutGenerator { get => Model.Generator; set => Model.Generator = value; }
        public int TrainCount { get; }
        public bool HasValidation => _valX is not null;
        public Tensor TrainX => _trainX;
        public Tensor TrainY => _trainY;
        public Tensor? ValX => _valX;
        public Tensor? ValY => _valY;

        public void EnterStage(int stage)
        {
            Model.Freeze();
            Model.Unfreeze(ModelGraph.HeadGroup);
        }

        public IReadOnlyList<ParamGroup> ParamGroups(int stage, TrainOptions options) =>
            [new ParamGroup("head", Model.HeadParameters(), options.LearningRate)];

        public IEnumerable<(Tensor X, Tensor Y)> TrainBatches(int epoch, CancellationToken cancellation)
        {
            var order = DataLoader.Order(TrainCount, true, _options.Seed, epoch);
            for (int s = 0; s < order.Length; s += _options.BatchSize)
            {
                var idx = order.Skip(s).Take(_options.BatchSize).Select(i => (long)i).ToArray();
                using var index = torch.tensor(idx, device: _device);
                yield return (_trainX.index_select(0, index), _trainY.index_select(0, index));
            }
        }

        public Tensor Forward(Tensor x) => Model.Run(new Dictionary<string, Tensor> { [Model.Graph.PreLogitsNode] = x }, [Model.Graph.Output])[0];

        public (double Loss, double Accuracy) Validate(IProgress<ProgressInfo>? progress, CancellationToken cancellation) =>
            Score(Model, Batches(_valX!, _valY!), Forward, "validate", _valY!.shape[0], null, cancellation);

        private IEnumerable<(Tensor, Tensor)> Batches(Tensor x, Tensor y)
        {
            long n = y.shape[0];
            for (long s = 0; s < n; s += 1024) yield return (x.narrow(0, s, Math.Min(1024, n - s)), y.narrow(0, s, Math.Min(1024, n - s)));
        }

        public bool Persist(string tensorName) => Model.Graph.IsHeadTensor(tensorName);

        public void Dispose()
        {
            _trainX.Dispose();
            _trainY.Dispose();
            _valX?.Dispose();
            _valY?.Dispose();
        }
    }

    /// <summary>Fine-tuning on images: stage 1 the head on the frozen body, stage 2 the top groups unfrozen at a lower rate.</summary>
    private sealed class FineTuneTask : ITrainingTask<Tensor>
    {
        private readonly Vision.Preprocessing.Preprocessing _preprocessing;
        private readonly Dataset _train;
        private readonly Dataset? _val;
        private readonly TrainOptions _options;
        private readonly TrainRunOptions _run;
        private readonly Device _device;

        public FineTuneTask(GraphModule model, Vision.Preprocessing.Preprocessing preprocessing, Dataset train, Dataset? val, TrainOptions options, TrainRunOptions run)
        {
            Model = model;
            _preprocessing = preprocessing;
            _train = train;
            _val = val is { Count: > 0 } ? val : null;
            _options = options;
            _run = run;
            _device = TorchRuntime.ParseDevice(options.Device);
            // Check the unfreeze setting now, not after stage 1 has run.
            var groups = model.GroupNames;
            if (options.UnfreezeTop is { } n && (n > groups.Count || -n >= groups.Count))
                throw new InvalidOptionException(nameof(TrainOptions.UnfreezeTop), $"UnfreezeTop {n}: model '{model.Graph.Name}' has {groups.Count} layer groups ({string.Join(", ", groups)}); use at most {groups.Count}, or −1 … −{groups.Count - 1} to keep that many at the bottom frozen");
            if (options.UnfreezeFrom is { } g && !groups.Contains(g, StringComparer.OrdinalIgnoreCase))
                throw new InvalidOptionException(nameof(TrainOptions.UnfreezeFrom), $"UnfreezeFrom {g}: model '{model.Graph.Name}' has no layer group '{g}'; groups: {string.Join(", ", groups)}");
        }

        public GraphModule Model { get; }
        public nn.Module Module => Model;
        public IEnumerable<Tensor> L2Parameters => Model.HeadParameters().Select(p => p.Parameter).Where(p => p.dim() > 1);
        public Generator? DropoutGenerator { get => Model.Generator; set => Model.Generator = value; }
        public int TrainCount => _train.Count;
        public bool HasValidation => _val is not null;

        public void EnterStage(int stage)
        {
            if (stage == 1)
            {
                Model.Freeze();
                Model.Unfreeze(ModelGraph.HeadGroup);
            }
            else Model.UnfreezeTop(StageTwoGroups());
        }

        /// <summary>How many layer groups (the head counted) stage 2 trains: <see cref="TrainOptions.UnfreezeTop"/>, or
        /// <see cref="TrainOptions.UnfreezeFrom"/>'s group and those above it (both checked by the constructor).</summary>
        private int StageTwoGroups()
        {
            if (_options.UnfreezeFrom is not { } g)
                return _options.UnfreezeTop is { } n ? (n < 0 ? Model.GroupNames.Count + n : n) : 2;
            var names = Model.GroupNames;
            return names.Count - names.ToList().FindIndex(n => string.Equals(n, g, StringComparison.OrdinalIgnoreCase));
        }

        /// <summary>Gradual unfreezing: stage 2's optimizer holds every group the stage unfreezes (EnterStage); epoch j of
        /// the stage leaves the head and the top j + 1 body groups trainable, the rest frozen (no gradient, so no update).</summary>
        public void EnterEpoch(int stage, int epochOfStage)
        {
            if (stage != 2 || !_options.GradualUnfreeze) return;
            Model.UnfreezeTop(Math.Min(StageTwoGroups(), 2 + epochOfStage));
        }

        public IReadOnlyList<ParamGroup> ParamGroups(int stage, TrainOptions options)
        {
            var head = Model.HeadParameters();
            var body = Model.named_parameters().Where(p => p.parameter.requires_grad && !head.Any(h => h.Item1 == p.name)).Select(p => (p.name, (Tensor)p.parameter)).ToArray();
            var groups = new List<ParamGroup> { new("head", head, options.LearningRate) };
            if (body.Length == 0) return groups;
            double bodyRate = options.LearningRate * options.BodyLearningRateFactor;
            if (options.LayerDecay == 1)
            {
                groups.Add(new ParamGroup("body", body, bodyRate));
                return groups;
            }
            // Discriminative rates: one optimizer group per layer group, the rate falling by LayerDecay per group down.
            var layerGroups = Model.GroupNames.Where(g => g != ModelGraph.HeadGroup).Reverse().ToArray(); // top body group first
            var byGroup = body.GroupBy(p => Model.Graph.GroupOf(p.name)?.Name ?? layerGroups[^1]).ToDictionary(g => g.Key, g => g.ToArray());
            for (int k = 0; k < layerGroups.Length; k++)
                if (byGroup.TryGetValue(layerGroups[k], out var parameters))
                    groups.Add(new ParamGroup(layerGroups[k], parameters, bodyRate * Math.Pow(options.LayerDecay, k)));
            return groups;
        }

        public IEnumerable<(Tensor X, Tensor Y)> TrainBatches(int epoch, CancellationToken cancellation)
        {
            var transform = new Data.SampleTransform(_preprocessing, _options.Augmentation);
            var order = DataLoader.Order(_train.Count, true, _options.Seed, epoch);
            // Mixup/CutMix draws come from a stream of their own (−3; the shuffle is −1, dropout −2), seeded per epoch.
            var mixing = _options.Mixup > 0 || _options.CutMix > 0 ? new Random(DataLoader.MixSeed(_options.Seed, epoch, -3)) : null;
            int classes = mixing is null ? 0 : (int)Model.Graph.Shapes[Model.Graph.ClassifierNode!][^1];
            foreach (var b in DataLoader.Batches(_train, order, transform, _options.Loader with { BatchSize = _options.BatchSize }, _options.Seed, epoch, _run.BadImages, cancellation))
            {
                var (x, y) = (OnDevice(b.Images, _device), OnDevice(b.Labels, _device));
                if (mixing is null) yield return (x, y);
                else
                {
                    using (x)
                    using (y)
                        yield return BatchMixing.Apply(x, y, classes, _options.Mixup, _options.CutMix, mixing);
                }
            }
        }

        public Tensor Forward(Tensor x) => Model.forward(x);

        public (double Loss, double Accuracy) Validate(IProgress<ProgressInfo>? progress, CancellationToken cancellation)
        {
            var transform = new Data.SampleTransform(_preprocessing);
            var batches = DataLoader.Batches(_val!, Enumerable.Range(0, _val!.Count).ToArray(), transform, _options.Loader with { BatchSize = _options.BatchSize },
                badImages: _run.BadImages, cancellation: cancellation).Select(b => (OnDevice(b.Images, _device), OnDevice(b.Labels, _device)));
            return Score(Model, batches, Model.forward, "validate", _val.Count, progress, cancellation);
        }

        public bool Persist(string tensorName) => true;
    }
}
