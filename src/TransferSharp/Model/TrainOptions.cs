using TransferSharp.Vision.Graph;
using TransferSharp.Data;

namespace TransferSharp.Training;

/// <summary>How the model is trained.</summary>
public enum TrainMode
{
    /// <summary>Extract the frozen body's pooled features once, then train only the head on them (fast).</summary>
    Head,
    /// <summary>Stage 1: the head on a frozen body (images, augmented); stage 2: the top layer groups unfrozen too.</summary>
    FineTune,
    /// <summary>The head first (as <see cref="Head"/>); then, with at least <see cref="TrainOptions.AutoMinTrainImages"/>
    /// training images and validation data, fine-tuning from it by <see cref="TrainOptions.FineTuneFromHead"/>, kept only
    /// when its validation accuracy beats the head's. <see cref="TrainingRecord.Decision"/> says what was done and why.</summary>
    Auto,
}

/// <summary>Optimizer, with PyTorch's update rules.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW (decoupled weight decay), betas 0.9/0.999, eps 1e-8.</summary>
    AdamW,
    /// <summary>SGD with momentum (weight decay added to the gradient, as PyTorch's SGD does).</summary>
    Sgd,
    /// <summary>Adam with L2 weight decay added to the gradient (coupled, as PyTorch's <c>Adam</c> does), betas 0.9/0.999,
    /// eps 1e-8: what text classifiers train with.</summary>
    Adam,
}

/// <summary>Learning-rate schedule after the linear warm-up.</summary>
public enum ScheduleKind
{
    /// <summary>Cosine decay to <see cref="TrainOptions.MinLearningRateFactor"/> × the base rate at the end of the stage.</summary>
    Cosine,
    /// <summary>Multiply by <see cref="TrainOptions.StepGamma"/> every <see cref="TrainOptions.StepEpochs"/> epochs.</summary>
    Step,
    /// <summary>No decay.</summary>
    Constant,
    /// <summary>Linear decay from the base rate to 0 at the end of the stage (BERT's and Hugging Face's default for
    /// fine-tuning transformers).</summary>
    Linear,
    /// <summary>One cycle per stage, as fastai's <c>fit_one_cycle</c> schedules the rate: from 1/25 of the base rate up to
    /// it along a half cosine over the warm-up (<see cref="TrainOptions.WarmupEpochs"/>, or the first quarter of the stage
    /// when that is 0), then down along a half cosine to 1e-5 of it at the end. (fastai also cycles the momentum; this
    /// schedules the rate only.)</summary>
    OneCycle,
}

/// <summary>Training settings (all of them are stored in the model file). Defaults suit a small data set.</summary>
public sealed record TrainOptions
{
    /// <summary>Head only (cached features) or fine-tuning.</summary>
    public TrainMode Mode { get; init; } = TrainMode.Head;

    /// <summary>Epochs in all (fine-tuning: stage 1 plus stage 2).</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Fine-tuning: epochs of stage 1 (head on the frozen body); null: a third of <see cref="Epochs"/>, at least 1.</summary>
    public int? HeadEpochs { get; init; }

    /// <summary>Fine-tuning stage 2: unfreeze the top N layer groups (the head counts as one). Default 2: the head and the last
    /// body group. A negative N keeps the bottom −N groups frozen and unfreezes the rest (−1: all but the stem), whatever
    /// the model's number of groups.</summary>
    public int? UnfreezeTop { get; init; }

    /// <summary>Fine-tuning stage 2: unfreeze this group and everything above it (instead of <see cref="UnfreezeTop"/>).</summary>
    public string? UnfreezeFrom { get; init; }

    /// <summary>Where training runs: "cpu" (default), "cuda", "cuda:N" or "auto" (CUDA needs a CUDA build of
    /// TorchSharp). Batches are decoded on the CPU and moved; the returned model is on the CPU. Not part of a
    /// checkpoint's identity: a run may resume on another device (bit-identical resumption holds per device).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Samples per forward pass (images when fine-tuning, feature vectors in head mode).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Micro-batches whose gradients are summed before each optimizer step.</summary>
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Optimizer.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;

    /// <summary>Learning rate of the head (and of everything in stage 1).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Stage 2: the body's learning rate is this fraction of the head's.</summary>
    public double BodyLearningRateFactor { get; init; } = 0.1;

    /// <summary>Stage 2, discriminative learning rates: each unfrozen body group further below the head trains at this
    /// factor of the group above it — the top body group at head rate × <see cref="BodyLearningRateFactor"/>, the next at
    /// × <c>LayerDecay</c> more, and so on (timm's <c>layer_decay</c>, fastai's geometric <c>slice(lo, hi)</c>).
    /// 1 (the default): one rate for the whole body.</summary>
    public double LayerDecay { get; init; } = 1;

    /// <summary>Stage 2, gradual unfreezing (ULMFiT's): the body groups that stage unfreezes join one per epoch, top first —
    /// its first epoch trains the head and the top body group, the next adds the group below, until every group of
    /// <see cref="UnfreezeTop"/> / <see cref="UnfreezeFrom"/> trains. A group's Adam moments start when it joins, but its
    /// bias correction counts the stage's steps (a gentle start rather than PyTorch's fresh optimizer per phase).</summary>
    public bool GradualUnfreeze { get; init; }

    /// <summary>Weight decay (AdamW: decoupled; SGD: added to the gradient). Applied to weight matrices and kernels, not to biases or norm parameters.</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>L2 penalty λ/2·‖W‖² on the head's weight matrices, added to the loss (the classic regularised softmax regression).
    /// With <see cref="HeadSolver.Lbfgs"/>, 0 (the default) means: chosen on the validation split from a grid (1/N without one).</summary>
    public double L2 { get; init; }

    /// <summary>Head mode with a linear head: L-BFGS logistic regression to convergence with λ chosen on validation
    /// (default), or mini-batch epochs. MLP heads and fine-tuning always train by epochs.</summary>
    public HeadSolver HeadSolver { get; init; } = HeadSolver.Lbfgs;

    /// <summary>Head mode, L-BFGS head with λ chosen on validation data: refit the head on the training and validation
    /// samples together with the chosen λ, as scikit-learn's <c>LogisticRegressionCV(refit=True)</c> does, so the final
    /// model learns from every labelled image (the validation scores in the record are those of the search, before the
    /// refit). <see cref="TrainMode.Auto"/> compares its arms on the scores before the refit, then refits the arm it keeps.
    /// On by default: +1.6 points on the garments and +3.4 on the MNIST digits (docs/workflows.md). Fine-tuning starts
    /// from the head of the training split (not refitted), and at its end, with validation data, fits its classifier again
    /// the same way on the fine-tuned body's features (<see cref="TrainingRecord.ClassifierRefit"/>).</summary>
    public bool RefitHead { get; init; } = true;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Schedule after warm-up.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;

    /// <summary>Linear warm-up from 0, in epochs (fractions allowed), at the start of each stage.</summary>
    public double WarmupEpochs { get; init; }

    /// <summary>Step schedule: epochs between decays.</summary>
    public int StepEpochs { get; init; } = 10;

    /// <summary>Step schedule: decay factor.</summary>
    public double StepGamma { get; init; } = 0.1;

    /// <summary>Cosine schedule: final rate as a fraction of the base rate.</summary>
    public double MinLearningRateFactor { get; init; }

    /// <summary>Label smoothing of the cross-entropy loss (0–1).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Exponential moving average of the weights (0: off; e.g. 0.998): validation, the best epoch and the
    /// final model use the average of each stage's steps (see docs/workflows.md for what it gains).</summary>
    public double EmaDecay { get; init; }

    /// <summary>Fine-tuning: mixup with this Beta(α, α) (0: off; timm's recipes use 0.8): each batch blends pairs of images
    /// and their labels. With <see cref="CutMix"/> also on, each batch takes one of the two.</summary>
    public double Mixup { get; init; }

    /// <summary>Fine-tuning: CutMix with this Beta(α, α) (0: off; timm's recipes use 1.0): a box of another image of the
    /// batch is pasted in and the labels blended by area.</summary>
    public double CutMix { get; init; }

    /// <summary>Stop a stage after this many epochs without a better validation score (0: never).</summary>
    public int Patience { get; init; }

    /// <summary>Fine-tuning: keep every BatchNorm layer in eval mode, even unfrozen ones (their running statistics
    /// stay those of pretraining; their scale and shift still train). Keras' advice for small data sets; the
    /// default lets unfrozen BatchNorm layers use and update batch statistics, as PyTorch does.</summary>
    public bool FreezeBatchNorm { get; init; }

    /// <summary>The head put on the body.</summary>
    public HeadSpec Head { get; init; } = new();

    /// <summary>Fine-tuning augmentation (null: none, the eval transform).</summary>
    public Augmentation? Augmentation { get; init; } = Augmentation.Standard;

    /// <summary>Seed for the head's initialisation, the data order, augmentation and dropout.</summary>
    public int Seed { get; init; }

    /// <summary>Fraction of the training data held out for validation when no validation set is given (0: none).</summary>
    public double ValidationSplit { get; init; } = 0.2;

    /// <summary>Batch size and decoding of images.</summary>
    public LoaderOptions Loader { get; init; } = new();

    /// <summary><see cref="TrainMode.Auto"/>: the fewest training images (after the validation split) for which fine-tuning
    /// is tried after the head. 200: fine-tuning gained 4.4 and 10.2 points over the head at 400 training images, and at 200
    /// 11.6 on the digits against −1.2 on the garments, the validation split choosing it on all four (docs/workflows.md,
    /// "How much data"); below 200 the validation split is under 50 images.</summary>
    public int AutoMinTrainImages { get; init; } = 200;

    /// <summary><see cref="TrainMode.Auto"/>: fine-tuning is tried only when its estimated time (the frozen body's forward
    /// pass timed on 64 training images before anything is fitted: about three forward passes per training image per epoch,
    /// one per validation image) is within this budget; otherwise the head is fitted alone, its features extracted once.
    /// 30 minutes: 1,000 images at 160×160 on two cores estimate about 7 (docs/workflows.md).</summary>
    public TimeSpan AutoBudget { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Epochs of <see cref="FineTuneFromHead"/> unless told otherwise: 8 is at or above 6 and 12 on both data sets of
    /// docs/workflows.md ("How many epochs"), in two thirds of 12's time.</summary>
    public const int FineTuneEpochs = 8;

    /// <summary>
    /// The fine-tuning recipe: what <c>transfer train --mode finetune</c> runs by default, and what follows a trained head in
    /// <see cref="TrainMode.Auto"/>, the demo and the ML.NET fine-tuner — no stage 1 here (<see cref="HeadEpochs"/> 0: the
    /// head is given; <c>--mode finetune</c> fits it by L-BFGS on cached features first), then <paramref name="epochs"/>
    /// epochs (default <see cref="FineTuneEpochs"/>) of every body group but the stem and the head (or the top
    /// <paramref name="unfreeze"/> groups), one cycle peaking at 1e-3 for the head and 3e-4 for the body, label smoothing
    /// 0.1, BatchNorm layers in eval mode (the pretrained statistics kept), crops of 35–100 % of the image, mirror images;
    /// the best validation epoch kept, then its classifier refitted on the fine-tuned features (<see cref="RefitHead"/>).
    /// Chosen by measurement on two data sets (docs/workflows.md, "The fine-tuning recipe").
    /// </summary>
    public static TrainOptions FineTuneFromHead(HeadSpec head, int? epochs = null, int? unfreeze = null) => new()
    {
        Mode = TrainMode.FineTune, Epochs = epochs ?? FineTuneEpochs, HeadEpochs = 0, UnfreezeTop = unfreeze ?? UnfreezeAllButStem,
        BatchSize = 32, LearningRate = 1e-3, BodyLearningRateFactor = 0.3, Schedule = ScheduleKind.OneCycle, LabelSmoothing = 0.1,
        FreezeBatchNorm = true, Augmentation = new Augmentation { Scale = (0.35, 1.0) }, Head = head,
    };

    /// <summary><see cref="UnfreezeTop"/>: every layer group but the first (the stem), however many the model has.</summary>
    public const int UnfreezeAllButStem = -1;

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new InvalidOptionException(nameof(Epochs), $"Epochs must be at least 1 (got {Epochs})");
        Head.Validate();
        if (HeadEpochs is { } h && (h < 0 || h > Epochs)) throw new InvalidOptionException(nameof(HeadEpochs), $"HeadEpochs {h} must lie in 0..Epochs ({Epochs})");
        if (BatchSize < 1) throw new InvalidOptionException(nameof(BatchSize), $"BatchSize must be at least 1 (got {BatchSize})");
        if (AccumulationSteps < 1) throw new InvalidOptionException(nameof(AccumulationSteps), $"AccumulationSteps must be at least 1 (got {AccumulationSteps})");
        if (LearningRate <= 0 || double.IsNaN(LearningRate)) throw new InvalidOptionException(nameof(LearningRate), $"LearningRate must be positive (got {LearningRate})");
        if (BodyLearningRateFactor < 0) throw new InvalidOptionException(nameof(BodyLearningRateFactor), "BodyLearningRateFactor must be ≥ 0");
        if (LayerDecay is <= 0 or > 1 || double.IsNaN(LayerDecay)) throw new InvalidOptionException(nameof(LayerDecay), $"LayerDecay must lie in (0, 1] (got {LayerDecay})");
        if (LabelSmoothing is < 0 or >= 1) throw new InvalidOptionException(nameof(LabelSmoothing), $"LabelSmoothing must lie in [0, 1) (got {LabelSmoothing})");
        if (Mixup < 0 || double.IsNaN(Mixup)) throw new InvalidOptionException(nameof(Mixup), $"Mixup (the Beta distribution's α) must be ≥ 0 (got {Mixup})");
        if (CutMix < 0 || double.IsNaN(CutMix)) throw new InvalidOptionException(nameof(CutMix), $"CutMix (the Beta distribution's α) must be ≥ 0 (got {CutMix})");
        if (EmaDecay is < 0 or >= 1 || double.IsNaN(EmaDecay)) throw new InvalidOptionException(nameof(EmaDecay), $"EmaDecay must lie in [0, 1) (got {EmaDecay})");
        if (ValidationSplit is < 0 or >= 1) throw new InvalidOptionException(nameof(ValidationSplit), $"ValidationSplit must lie in [0, 1) (got {ValidationSplit})");
        if (Patience < 0) throw new InvalidOptionException(nameof(Patience), "Patience must be ≥ 0");
        if (AutoMinTrainImages < 0) throw new InvalidOptionException(nameof(AutoMinTrainImages), "AutoMinTrainImages must be ≥ 0");
        if (AutoBudget < TimeSpan.Zero) throw new InvalidOptionException(nameof(AutoBudget), "AutoBudget must not be negative");
        if (UnfreezeTop is not null && UnfreezeFrom is not null) throw new InvalidOptionException(nameof(UnfreezeFrom), "give either UnfreezeTop or UnfreezeFrom, not both");
    }

    internal int ResolvedHeadEpochs => Mode == TrainMode.Head ? Epochs : HeadEpochs ?? Math.Max(1, Epochs / 3);
}

/// <summary>One epoch's numbers.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Stage">1: head on the frozen body; 2: unfrozen top groups.</param>
/// <param name="TrainLoss">Mean training loss (with label smoothing and L2, in training mode).</param>
/// <param name="TrainAccuracy">Training accuracy over the epoch, in training mode.</param>
/// <param name="ValidationLoss">Validation cross-entropy (null without validation data).</param>
/// <param name="ValidationAccuracy">Validation accuracy.</param>
/// <param name="LearningRate">Head learning rate at the end of the epoch.</param>
/// <param name="Seconds">Wall time of the epoch, validation included.</param>
/// <param name="TrainImagesPerSecond">Training samples per second of the training pass (loading and steps; validation not
/// included); 0 where no pass ran (a head fitted by L-BFGS).</param>
/// <param name="LoaderWaitSeconds">Seconds of the training pass the steps waited for the loader's next batch: near 0 when
/// loading keeps up with the model (the cores do model work), a large share of the pass when loading is the bottleneck.</param>
public sealed record EpochRecord(int Epoch, int Stage, double TrainLoss, double TrainAccuracy, double? ValidationLoss, double? ValidationAccuracy,
    double LearningRate, double Seconds, double TrainImagesPerSecond = 0, double LoaderWaitSeconds = 0);

/// <summary>What training did: settings, data, the curves and the kept epoch. Stored in the model file.</summary>
public sealed record TrainingRecord
{
    /// <summary>The settings.</summary>
    public TrainOptions Options { get; init; } = new();

    /// <summary>The starting model (zoo name and weights, or a model file).</summary>
    public string Source { get; init; } = "";

    /// <summary>Where the training data came from.</summary>
    public string Data { get; init; } = "";

    /// <summary>Training samples.</summary>
    public int TrainSamples { get; init; }

    /// <summary>Validation samples (0: none).</summary>
    public int ValidationSamples { get; init; }

    /// <summary>Images left out as unreadable.</summary>
    public int BadImages { get; init; }

    /// <summary>Per-epoch numbers.</summary>
    public IReadOnlyList<EpochRecord> History { get; init; } = [];

    /// <summary>The epoch whose weights were kept (best validation accuracy, ties to lower loss; the last without validation).</summary>
    public int BestEpoch { get; init; }

    /// <summary>Validation accuracy of the kept epoch.</summary>
    public double? BestValidationAccuracy { get; init; }

    /// <summary>True when early stopping ended the last stage.</summary>
    public bool StoppedEarly { get; init; }

    /// <summary>Layer groups trainable in the last stage.</summary>
    public IReadOnlyList<string> TrainedGroups { get; init; } = [];

    /// <summary>The L-BFGS fit of the head (<see cref="HeadSolver.Lbfgs"/>): the λ kept and every λ tried; null after epoch training.</summary>
    public HeadFitRecord? HeadFit { get; init; }

    /// <summary>Fine-tuning with <see cref="TrainOptions.RefitHead"/>: the L-BFGS fit of the classifier on the fine-tuned
    /// body's features that replaced the fine-tuned classifier (λ chosen on the validation data, then fitted on training +
    /// validation data); null when the classifier is the one fine-tuning trained.</summary>
    public HeadFitRecord? ClassifierRefit { get; init; }

    /// <summary>Wall time of training, seconds (feature extraction included).</summary>
    public double Seconds { get; init; }

    /// <summary><see cref="TrainMode.Auto"/>: what was kept and why (null in the other modes).</summary>
    public string? Decision { get; init; }
}

/// <summary>How a linear head is fitted on cached features (<see cref="TrainMode.Head"/>).</summary>
public enum HeadSolver
{
    /// <summary>Multinomial logistic regression fitted to convergence by full-batch L-BFGS, its L2 strength chosen on
    /// the validation split from a grid (scikit-learn's <c>LogisticRegressionCV</c>, with a held-out split for the
    /// folds). Seconds for thousands of samples; deterministic; independent of learning rate, batch size and epochs.</summary>
    Lbfgs,

    /// <summary>Mini-batch epochs with the optimizer and schedule of <see cref="TrainOptions"/> (the loop fine-tuning
    /// uses; needed for MLP heads).</summary>
    Epochs,
}

/// <summary>One L2 strength tried by <see cref="HeadSolver.Lbfgs"/>.</summary>
/// <param name="L2">λ of the penalty λ/2·‖W‖² added to the mean cross-entropy.</param>
/// <param name="Iterations">L-BFGS iterations until convergence (warm-started from the previous, stronger λ).</param>
/// <param name="TrainLoss">Objective at the optimum (mean cross-entropy plus the penalty).</param>
/// <param name="ValidationLoss">Validation cross-entropy (null without validation data).</param>
/// <param name="ValidationAccuracy">Validation accuracy (null without validation data).</param>
public sealed record HeadFitCandidate(double L2, int Iterations, double TrainLoss, double? ValidationLoss, double? ValidationAccuracy);

/// <summary>What <see cref="HeadSolver.Lbfgs"/> did: the λ kept and every λ tried.</summary>
/// <param name="L2">The λ whose weights the model holds.</param>
/// <param name="Converged">True when every fit ended on the gradient or objective tolerance, not the iteration cap.</param>
/// <param name="Candidates">Every λ tried, strongest first (the search stops after two λ worse than the best).</param>
public sealed record HeadFitRecord(double L2, bool Converged, IReadOnlyList<HeadFitCandidate> Candidates)
{
    /// <summary>Samples of the final fit: the training samples, plus the validation samples when the head was refitted
    /// on both with the chosen λ (<see cref="TrainOptions.RefitHead"/>).</summary>
    public int? FinalFitSamples { get; init; }

    /// <summary>Validation accuracy of the fit at the kept λ, before any refit (null without validation data): the score
    /// <see cref="TrainMode.Auto"/> compares its arms on. Derived from <see cref="Candidates"/>, so not written.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double? ChosenValidationAccuracy => Candidates.FirstOrDefault(c => c.L2 == L2)?.ValidationAccuracy;
}
