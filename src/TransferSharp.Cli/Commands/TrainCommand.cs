using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Cli.Commands;

/// <summary>Console plumbing shared by the workflow commands: Ctrl+C, progress lines, bad-image reports.</summary>
internal static class WorkflowConsole
{
    /// <summary>Progress as one updating line on stderr (a terminal) or a line per ~10% (a pipe).</summary>
    public sealed class ProgressLine : IProgress<ProgressInfo>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private double _lastDraw = -1;
        private string _lastPhase = "";
        private int _lastDecile = -1;
        private readonly bool _tty = !Console.IsErrorRedirected;

        public void Report(ProgressInfo p)
        {
            double now = _clock.Elapsed.TotalSeconds;
            bool done = p.Done >= p.Total;
            int decile = p.Total > 0 ? (int)(10 * p.Done / p.Total) : 0;
            if (p.Phase != _lastPhase) { _lastDecile = -1; _lastPhase = p.Phase; }
            var epoch = p.Epochs > 0 ? $"epoch {p.Epoch}/{p.Epochs} " : "";
            var loss = p.Loss is { } l ? $" loss {l:F4}" : "";
            var text = $"{p.Phase,-9} {epoch}{p.Done}/{p.Total} ({p.SamplesPerSecond:F1} samples/s){loss}";
            if (_tty)
            {
                if (!done && now - _lastDraw < 0.2) return;
                _lastDraw = now;
                Console.Error.Write("\r" + text.PadRight(78) + (done ? "\n" : ""));
            }
            else if (decile != _lastDecile || done)
            {
                _lastDecile = decile;
                if (decile % 5 == 0 || done) Console.Error.WriteLine(text);
            }
        }
    }

    public static LoaderOptions Loader(int batchSize, int workers, string onBadImage) => new()
    {
        BatchSize = batchSize,
        Workers = workers,
        OnBadImage = onBadImage.ToLowerInvariant() switch
        {
            "skip" => BadImagePolicy.Skip,
            "fail" => BadImagePolicy.Fail,
            _ => throw new UsageException($"--on-bad-image '{onBadImage}': use skip or fail"),
        },
    };

    public static void ReportBadImages(BadImageLog log)
    {
        if (log.Count == 0) return;
        ConsoleUi.Err.MarkupLine($"[yellow]{log.Count} unreadable image{(log.Count > 1 ? "s were" : " was")} skipped:[/]");
        foreach (var (path, reason) in log.Entries.Take(50)) ConsoleUi.Err.MarkupLine($"  {Markup.Escape(path)}: {Markup.Escape(reason)}");
        if (log.Count > 50) ConsoleUi.Err.MarkupLine($"  … and {log.Count - 50} more (all listed with --json)");
    }

    public static object BadImagesJson(BadImageLog log) => log.Entries.Select(e => new { e.Path, e.Reason }).ToArray();
}

/// <summary>Options of the commands that read a data set with a model.</summary>
public class WorkflowSettings : CommonSettings
{
    [CommandOption("-m|--model <MODEL>")]
    [Description("Zoo name (see `transfer models`), an .onnx file (imported as the body), or a trained model file (.safetensors).")]
    public string Model { get; init; } = "";

    [CommandOption("-d|--data <PATH>")]
    [Description("Images: a folder with one subfolder per class, or a .csv/.tsv manifest (path,label).")]
    public string Data { get; init; } = "";

    [CommandOption("--workers <N>")]
    [Description("Image decoding threads (default: one per core).")]
    [DefaultValue(0)]
    public int Workers { get; init; }

    [CommandOption("--on-bad-image <POLICY>")]
    [Description("skip (default: left out, listed at the end) or fail.")]
    [DefaultValue("skip")]
    public string OnBadImage { get; init; } = "skip";

    /// <summary>Checks --model and --data.</summary>
    protected ValidationResult RequireModelAndData() =>
        string.IsNullOrWhiteSpace(Model) ? ValidationResult.Error("--model is required, e.g. --model resnet50")
        : string.IsNullOrWhiteSpace(Data) ? ValidationResult.Error("--data is required: a folder with one subfolder per class, or a .csv manifest")
        : ValidationResult.Success();
}

/// <summary>Options of the commands that start from a zoo model's weights.</summary>
public class WeightsSettings : WorkflowSettings
{
    [CommandOption("-w|--weights <WEIGHTS>")]
    [Description("Weights of a zoo model: imagenet (default), a tag, a weights file, or none (random, seeded). Ignored for model files.")]
    [DefaultValue("imagenet")]
    public string Weights { get; init; } = "imagenet";

    [CommandOption("--image-size <PIXELS>")]
    [Description("Input crop size. Default: the weights' size, except for images smaller than it (thumbnails, 28-pixel scans): 5× their shorter side rounded up to a multiple of 32, at least 64 (as accurate, about twice as fast; see docs/workflows.md). Smaller is faster")]
    public int? ImageSize { get; init; }

    /// <summary>Opens --model with --weights (a model file ignores --weights); random weights are drawn with <paramref name="seed"/>.
    /// Without --image-size, a zoo model takes <paramref name="data"/>'s small images at the size <see cref="Transfer.ImageSizeFor"/>
    /// picks, and says so.</summary>
    public VisionModel OpenSource(Dataset? data = null, int seed = 0)
    {
        var size = data is null ? ImageSize : (Transfer.From(Model) with { ImageSize = ImageSize }).ImageSizeFor(data);
        if (size != ImageSize && !Json)
            ConsoleUi.Err.MarkupLine($"[grey]the images are small ({(data as ImageDataset)?.TypicalShortSide()} px on the shorter side): input {size}×{size} instead of the weights' size (--image-size to choose)[/]");
        return VisionModel.Load(Model, Weights, new ModelOptions { ImageSize = size, Seed = seed });
    }
}

/// <summary>`transfer train`: a new head on a pretrained body (cached features) or two-stage fine-tuning.</summary>
public sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : WeightsSettings
    {
        [CommandOption("--val <PATH>")]
        [Description("Validation images (same layout). Without it, --val-split of the training data is held out.")]
        public string? Val { get; init; }

        [CommandOption("--val-split <FRACTION>")]
        [Description("Fraction of the training data held out for validation when --val is not given (stratified, seeded; 0: none).")]
        [DefaultValue(0.2)]
        public double ValSplit { get; init; } = 0.2;

        [CommandOption("--mode <MODE>")]
        [Description("auto (default): the head, then — with at least 200 training images, validation data, and an estimated fine-tuning time within 30 min — the fine-tuning recipe from it, kept only if its validation accuracy is higher; the output says which and why. head: a new head on cached features of the frozen body (fast: an L-BFGS logistic regression, λ chosen on the validation data, refitted on all images). finetune: the fine-tuning recipe — the L-BFGS head fitted on the training split, then 8 epochs with every layer group but the stem unfrozen (one cycle to 1e-3, the body at 0.3×, BatchNorm statistics frozen, label smoothing 0.1, crops of 35–100 %, mirror images; docs/workflows.md), then its classifier refitted on the fine-tuned features; each flag overrides its part, --head-epochs N trains the head by N epochs on images instead.")]
        [DefaultValue("auto")]
        public string Mode { get; init; } = "auto";

        [CommandOption("--head-solver <NAME>")]
        [Description("head mode, linear head: lbfgs (default: logistic regression fitted to convergence, --l2 chosen on the validation data from a grid; --epochs, --lr, --batch-size unused) or epochs (mini-batch epochs with --optimizer/--lr/--schedule).")]
        [DefaultValue("lbfgs")]
        public string HeadSolver { get; init; } = "lbfgs";

        [CommandOption("-e|--epochs <N>")]
        [Description("Epochs in all (finetune: stage 1 + stage 2; without --head-epochs, stage 2's, after the L-BFGS head). Default 10 (head mode with --head-solver epochs), the fine-tuning recipe's in finetune mode.")]
        public int? Epochs { get; init; }

        [CommandOption("--head-epochs <N>")]
        [Description("finetune: epochs of stage 1 (the head alone, on augmented images) within --epochs. Default: none — the head is fitted by L-BFGS on cached features of the training split first, and all --epochs fine-tune.")]
        public int? HeadEpochs { get; init; }

        [CommandOption("--unfreeze <N>")]
        [Description("finetune stage 2: unfreeze the top N layer groups, the head counting as one; a negative N keeps the bottom -N groups frozen (-1: all but the stem). Default: the fine-tuning recipe's. See `transfer summary`.")]
        public int? Unfreeze { get; init; }

        [CommandOption("--unfreeze-from <GROUP>")]
        [Description("finetune stage 2: unfreeze this layer group and all above it (e.g. layer3).")]
        public string? UnfreezeFrom { get; init; }

        [CommandOption("-b|--batch-size <N>")]
        [Description("Samples per step (images in finetune, feature vectors in head mode). Default 32 (finetune) / 64 (head).")]
        public int? BatchSize { get; init; }

        [CommandOption("--accumulate <N>")]
        [Description("Sum gradients over N batches per optimizer step.")]
        [DefaultValue(1)]
        public int Accumulate { get; init; } = 1;

        [CommandOption("--optimizer <NAME>")]
        [Description("adamw (decoupled weight decay), adam (L2 added to the gradient) or sgd (momentum 0.9).")]
        [DefaultValue("adamw")]
        public string Optimizer { get; init; } = "adamw";

        [CommandOption("--lr <RATE>")]
        [Description("Head learning rate (default 1e-3 AdamW, 1e-2 SGD).")]
        public double? LearningRate { get; init; }

        [CommandOption("--body-lr-factor <F>")]
        [Description("finetune stage 2: body learning rate = head rate × F. Default: the fine-tuning recipe's.")]
        public double? BodyLrFactor { get; init; }

        [CommandOption("--layer-decay <D>")]
        [Description("finetune stage 2, discriminative rates: each body group below the top one trains at D × the rate of the group above it (e.g. 0.5; 1 = one rate for the body). Groups: `transfer summary --model M`.")]
        [DefaultValue(1.0)]
        public double LayerDecay { get; init; } = 1;

        [CommandOption("--auto-budget <MINUTES>")]
        [Description("auto: the longest fine-tuning auto tries, in minutes of estimated wall time (estimated before anything is fitted, from a timed pass of the frozen body over 64 training images); over it auto fits the head alone and says so. Default 30; 0 never fine-tunes.")]
        public double? AutoBudget { get; init; }

        [CommandOption("--auto-min-images <N>")]
        [Description("auto: the fewest training images (after the validation split) for which fine-tuning is tried; below, the head alone. Default 200 (measured on two data sets: docs/workflows.md, \"How much data\").")]
        public int? AutoMinImages { get; init; }

        [CommandOption("--no-refit-head")]
        [Description("head mode, L-BFGS head: keep the head fitted on the training split. By default, once λ is chosen on the validation data, the head is refitted on training + validation data with it (scikit-learn's LogisticRegressionCV refit; +1.6 and +3.4 points measured on two data sets). Fine-tuning (and --mode auto's fine-tuned arm) likewise fits its classifier again at the end on the fine-tuned body's features of training + validation images (+0.4 to +4.0 points measured on seven fine-tuned models); this flag keeps the fine-tuned classifier. --mode auto compares its two arms before either refit, then refits the one it keeps (this flag: neither).")]
        public bool NoRefitHead { get; init; }

        [CommandOption("--gradual-unfreeze")]
        [Description("finetune stage 2: unfreeze its body groups one per epoch, top first (ULMFiT), until all of --unfreeze / --unfreeze-from train.")]
        public bool GradualUnfreeze { get; init; }

        [CommandOption("--weight-decay <WD>")]
        [Description("Weight decay of weight matrices and kernels (AdamW decoupled; SGD coupled).")]
        [DefaultValue(1e-4)]
        public double WeightDecay { get; init; } = 1e-4;

        [CommandOption("--l2 <LAMBDA>")]
        [Description("L2 penalty λ/2·‖W‖² on the head's weights, added to the loss. With --head-solver lbfgs, 0 (default) chooses it on the validation data.")]
        [DefaultValue(0.0)]
        public double L2 { get; init; }

        [CommandOption("--schedule <NAME>")]
        [Description("cosine, step, linear (to 0 at the end of the stage), onecycle (fastai's: up from lr/25 over --warmup or the first quarter, down to lr×1e-5) or constant (after warm-up). Default cosine (head mode), the fine-tuning recipe's in finetune mode.")]
        public string? Schedule { get; init; }

        [CommandOption("--warmup <EPOCHS>")]
        [Description("Linear warm-up at the start of each stage, in epochs. Default 0 (head mode), the fine-tuning recipe's in finetune mode.")]
        public double? Warmup { get; init; }

        [CommandOption("--step-epochs <N>")]
        [Description("step schedule: epochs between decays.")]
        [DefaultValue(10)]
        public int StepEpochs { get; init; } = 10;

        [CommandOption("--step-gamma <G>")]
        [Description("step schedule: decay factor.")]
        [DefaultValue(0.1)]
        public double StepGamma { get; init; } = 0.1;

        [CommandOption("--label-smoothing <S>")]
        [Description("Label smoothing of the loss (0–1). Default 0 (head mode), the fine-tuning recipe's in finetune mode.")]
        public double? LabelSmoothing { get; init; }

        [CommandOption("--ema <DECAY>")]
        [DefaultValue(0.0)]
        [Description("Average the weights over the training steps (exponential moving average with this decay, e.g. 0.998; 0: off): validation and the saved model use the average. Epoch-trained stages only: the default head of --mode head is fitted by L-BFGS, which it leaves unchanged.")]
        public double Ema { get; init; }

        [CommandOption("--mixup <ALPHA>")]
        [DefaultValue(0.0)]
        [Description("Fine-tuning: mixup, blending pairs of images and their labels with a Beta(ALPHA, ALPHA) weight (timm uses 0.8; 0: off).")]
        public double Mixup { get; init; }

        [CommandOption("--cutmix <ALPHA>")]
        [DefaultValue(0.0)]
        [Description("Fine-tuning: CutMix, pasting a box of another image and blending the labels by area (timm uses 1.0; 0: off). With --mixup, each batch takes one of the two.")]
        public double CutMix { get; init; }

        [CommandOption("--patience <N>")]
        [Description("Early stopping: end a stage after N epochs without a better validation score (0: off).")]
        [DefaultValue(0)]
        public int Patience { get; init; }

        [CommandOption("--freeze-bn")]
        [Description("finetune: keep BatchNorm layers in eval mode even when unfrozen (running statistics of pretraining kept; the fine-tuning recipe's default, measured better on small data sets).")]
        public bool FreezeBatchNorm { get; init; }

        [CommandOption("--train-bn")]
        [Description("finetune: unfrozen BatchNorm layers use and update batch statistics (PyTorch's train mode) instead of the recipe's frozen statistics.")]
        public bool TrainBatchNorm { get; init; }

        [CommandOption("--head <KIND>")]
        [Description("linear (softmax regression) or mlp.")]
        [DefaultValue("linear")]
        public string Head { get; init; } = "linear";

        [CommandOption("--hidden <N>")]
        [Description("Hidden units of the mlp head.")]
        [DefaultValue(256)]
        public int Hidden { get; init; } = 256;

        [CommandOption("--dropout <P>")]
        [Description("Dropout before the head's last layer (default: the model's own — none for ResNet, 0.5 for VGG and Inception v3, 0.2 for MobileNetV2).")]
        public double? Dropout { get; init; }

        [CommandOption("--augment <KIND>")]
        [Description("finetune augmentation: standard (RandomResizedCrop, scale --crop-scale–1, + mirror images unless --no-flip) or none (the eval transform: no crops, no mirror images).")]
        [DefaultValue("standard")]
        public string Augment { get; init; } = "standard";

        [CommandOption("--crop-scale <MIN>")]
        [Description("finetune augmentation: the random crop's smallest area, as a fraction of the image (the crop covers MIN–1 of it; torchvision's ImageNet recipe uses 0.08, too aggressive for small objects). Default: the recipe's.")]
        public double? CropScale { get; init; }

        [CommandOption("--no-flip")]
        [Description("finetune augmentation: no random mirror images (for data whose mirror image is another class or no class, such as digits and text). The model file records it, and `transfer evaluate --tta` then refuses to average with mirror images.")]
        public bool NoFlip { get; init; }

        [CommandOption("--color-jitter <J>")]
        [Description("Add ColorJitter(J, J, J) to the augmentation.")]
        [DefaultValue(0.0)]
        public double ColorJitter { get; init; }

        [CommandOption("--seed <N>")]
        [DefaultValue(0)]
        [Description("Seed of the split, data order, augmentation, head initialisation, dropout and the random weights of --weights none.")]
        public int Seed { get; init; }

        [CommandOption("-o|--out <FILE>")]
        [Description("The trained model file (.safetensors).")]
        public string Out { get; init; } = "";

        [CommandOption("--checkpoint <FILE>")]
        [Description("Checkpoint written after every epoch (default: OUT.checkpoint). Deleted when training completes.")]
        public string? Checkpoint { get; init; }

        [CommandOption("--resume")]
        [Description("Continue a stopped run from its checkpoint (same settings and data).")]
        public bool Resume { get; init; }

        [CommandOption("--plot <FILE>")]
        [Description("Training curves PNG (default: OUT without extension + .curves.png; 'none' to skip). For an L-BFGS head: validation loss and accuracy over the L2 strengths tried.")]
        public string? Plot { get; init; }

        public override ValidationResult Validate()
        {
            if (RequireModelAndData() is { Successful: false } missing) return missing;
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required, e.g. --out model.safetensors");
            if (!Out.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return ValidationResult.Error("--out must end in .safetensors");
            if (FreezeBatchNorm && TrainBatchNorm) return ValidationResult.Error("--freeze-bn and --train-bn contradict each other: give one");
            if ((AutoBudget is not null || AutoMinImages is not null) && !Mode.Equals("auto", StringComparison.OrdinalIgnoreCase))
                return ValidationResult.Error($"--auto-budget and --auto-min-images set what --mode auto tries; they mean nothing with --mode {Mode}");
            if (AutoBudget is < 0 or > 1e6 or double.NaN) return ValidationResult.Error($"--auto-budget {AutoBudget}: give minutes from 0 (never fine-tune) to 1000000");
            if (AutoMinImages is < 0) return ValidationResult.Error($"--auto-min-images {AutoMinImages}: give a count of images, 0 or more");
            return ValidationResult.Success();
        }
    }

    internal static TrainOptions ToOptions(Settings s)
    {
        var mode = s.Mode.ToLowerInvariant() switch
        {
            "head" => TrainMode.Head,
            "finetune" or "fine-tune" => TrainMode.FineTune,
            "auto" => TrainMode.Auto,
            _ => throw new UsageException($"--mode '{s.Mode}': use head, finetune or auto"),
        };
        var optimizer = s.Optimizer.ToLowerInvariant() switch
        {
            "adamw" => OptimizerKind.AdamW,
            "sgd" => OptimizerKind.Sgd,
            "adam" => OptimizerKind.Adam,
            _ => throw new UsageException($"--optimizer '{s.Optimizer}': use adamw, adam or sgd"),
        };
        var head = s.Head.ToLowerInvariant() switch
        {
            "linear" or "softmax" => HeadKind.Linear,
            "mlp" => HeadKind.Mlp,
            _ => throw new UsageException($"--head '{s.Head}': use linear or mlp"),
        };
        var headSpec = new HeadSpec { Kind = head, Hidden = s.Hidden, Dropout = s.Dropout };
        // Fine-tuning starts from the recipe --mode auto and the demo run (TrainOptions.FineTuneFromHead), head mode from
        // TrainOptions' defaults; every flag given overrides either.
        var d = mode == TrainMode.FineTune ? TrainOptions.FineTuneFromHead(headSpec) : new TrainOptions { Head = headSpec };
        var schedule = s.Schedule is null ? d.Schedule : ParseSchedule(s.Schedule);
        var standard = d.Augmentation ?? Augmentation.Standard;
        Augmentation? augmentation = s.Augment.ToLowerInvariant() switch
        {
            "standard" => s.ColorJitter > 0 ? standard with { Brightness = s.ColorJitter, Contrast = s.ColorJitter, Saturation = s.ColorJitter } : standard,
            "none" => null,
            _ => throw new UsageException($"--augment '{s.Augment}': use standard or none"),
        };
        if (s.CropScale is { } cropScale)
        {
            if (augmentation is null) throw new UsageException("--crop-scale sets the random crop of --augment standard; it means nothing with --augment none");
            if (!(cropScale > 0 && cropScale <= 1)) throw new UsageException($"--crop-scale {cropScale}: the crop's smallest area must be a fraction of the image in (0, 1], e.g. 0.35");
            augmentation = augmentation with { Scale = (cropScale, 1.0) };
        }
        if (s.NoFlip)
        {
            if (augmentation is null) throw new UsageException("--no-flip switches off the mirror images of --augment standard; --augment none has none already");
            augmentation = augmentation with { HorizontalFlip = false };
        }
        var headSolver = s.HeadSolver.ToLowerInvariant() switch
        {
            "lbfgs" or "l-bfgs" => Training.HeadSolver.Lbfgs,
            "epochs" => Training.HeadSolver.Epochs,
            _ => throw new UsageException($"--head-solver '{s.HeadSolver}': use lbfgs or epochs"),
        };
        int batch = s.BatchSize ?? (mode == TrainMode.Head ? 64 : 32);
        return new TrainOptions
        {
            Mode = mode,
            Epochs = s.Epochs ?? d.Epochs,
            HeadEpochs = s.HeadEpochs,
            UnfreezeTop = s.Unfreeze ?? (s.UnfreezeFrom is null ? d.UnfreezeTop : null),
            UnfreezeFrom = s.UnfreezeFrom ?? (s.Unfreeze is null ? d.UnfreezeFrom : null),
            BatchSize = batch,
            AccumulationSteps = s.Accumulate,
            Optimizer = optimizer,
            LearningRate = s.LearningRate ?? (optimizer == OptimizerKind.Sgd ? 1e-2 : d.LearningRate),
            BodyLearningRateFactor = s.BodyLrFactor ?? d.BodyLearningRateFactor,
            LayerDecay = s.LayerDecay,
            GradualUnfreeze = s.GradualUnfreeze,
            RefitHead = !s.NoRefitHead,
            AutoBudget = s.AutoBudget is { } minutes ? TimeSpan.FromMinutes(minutes) : d.AutoBudget,
            AutoMinTrainImages = s.AutoMinImages ?? d.AutoMinTrainImages,
            WeightDecay = s.WeightDecay,
            L2 = s.L2,
            HeadSolver = headSolver,
            Schedule = schedule,
            WarmupEpochs = s.Warmup ?? d.WarmupEpochs,
            StepEpochs = s.StepEpochs,
            StepGamma = s.StepGamma,
            LabelSmoothing = s.LabelSmoothing ?? d.LabelSmoothing,
            EmaDecay = s.Ema,
            Mixup = s.Mixup,
            CutMix = s.CutMix,
            Patience = s.Patience,
            FreezeBatchNorm = !s.TrainBatchNorm && (s.FreezeBatchNorm || d.FreezeBatchNorm),
            Head = headSpec,
            Augmentation = augmentation,
            Seed = s.Seed,
            ValidationSplit = s.Val is null ? s.ValSplit : 0,
            Loader = WorkflowConsole.Loader(mode == TrainMode.Head ? 32 : batch, s.Workers, s.OnBadImage),
        };
    }

    /// <summary>The --schedule value of `transfer train` and `transfer text train`.</summary>
    internal static ScheduleKind ParseSchedule(string name) => name.ToLowerInvariant() switch
    {
        "cosine" => ScheduleKind.Cosine,
        "step" => ScheduleKind.Step,
        "constant" or "none" => ScheduleKind.Constant,
        "linear" => ScheduleKind.Linear,
        "onecycle" or "one-cycle" => ScheduleKind.OneCycle,
        _ => throw new UsageException($"--schedule '{name}': use cosine, step, linear, onecycle or constant"),
    };

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        TorchRuntime.ParseDevice(settings.Device); // a clear error now when CUDA is asked for and absent
        var options = ToOptions(settings) with { Device = settings.Device };
        options.Validate();
        var train = ImageDataset.Open(settings.Data);
        var val = settings.Val is null ? null : ImageDataset.Open(settings.Val);
        using var source = settings.OpenSource(train, settings.Seed);
        var badImages = new BadImageLog();
        var checkpoint = settings.Checkpoint ?? settings.Out + ".checkpoint";
        if (!settings.Json)
            ConsoleUi.Err.MarkupLine($"training [bold]{Markup.Escape(source.Description)}[/] on {train.Count} images in {train.ClassNames.Count} classes ({Markup.Escape(train.Origin)}), mode {options.Mode}, {options.Epochs} epochs");
        var run = new TrainRunOptions
        {
            Checkpoint = new CheckpointOptions { Path = checkpoint, Resume = settings.Resume },
            Progress = new WorkflowConsole.ProgressLine(),
            BadImages = badImages,
            OnEpoch = e => ConsoleUi.Err.MarkupLine(
                $"epoch {e.Epoch,3} (stage {e.Stage}): train loss {e.TrainLoss:F4} acc {e.TrainAccuracy:P1}"
                + (e.ValidationAccuracy is { } va ? $" | val loss {e.ValidationLoss:F4} acc {va:P1}" : "") + $" | lr {e.LearningRate:G3} | {e.Seconds:F1}s"
                + (e.TrainImagesPerSecond > 0 ? $" | {e.TrainImagesPerSecond:F0} images/s, waited {e.LoaderWaitSeconds:F1}s for the loader" : "")),
        };
        var record = Trainer.Train(source, train, val, options, run, cancellation);
        var model = source;
        model.Save(settings.Out);
        string? plot = settings.Plot is "none" ? null : settings.Plot ?? Path.ChangeExtension(settings.Out, null) + ".curves.png";
        if (plot is not null)
        {
            // An L-BFGS fit has one "epoch": its picture is the search over λ instead.
            if (record.Options.Mode == TrainMode.Head && record.HeadFit is { } headFit && headFit.Candidates.Any(c => c.ValidationLoss is not null))
                Plots.SaveHeadFit(headFit, plot, Path.GetFileNameWithoutExtension(settings.Out));
            else Plots.SaveTrainingCurves(record.History, plot, Path.GetFileNameWithoutExtension(settings.Out));
        }
        if (settings.Json)
        {
            Json.Print(new
            {
                Model = settings.Out, Plot = plot, record.Source, Classes = model.Labels, record.TrainSamples, record.ValidationSamples,
                record.Decision, record.BestEpoch, record.BestValidationAccuracy, record.StoppedEarly, record.HeadFit, record.ClassifierRefit, record.TrainedGroups, record.Seconds, record.History,
                BadImages = WorkflowConsole.BadImagesJson(badImages),
            });
        }
        else
        {
            WorkflowConsole.ReportBadImages(badImages);
            if (record.HeadFit is { } fit)
                ConsoleUi.Err.MarkupLine($"head fitted by L-BFGS: L2 {fit.L2:G3} kept of {fit.Candidates.Count} tried ({string.Join(", ", fit.Candidates.Select(c => $"{c.L2:G2}" + (c.ValidationAccuracy is { } a ? $": {a:P1}" : "")))})"
                    + (fit.Converged ? "" : "; [yellow]some fits hit the iteration cap[/]"));
            if (record.ClassifierRefit is { } refit)
                ConsoleUi.Err.MarkupLine($"classifier fitted again by L-BFGS on the fine-tuned features of {refit.FinalFitSamples} images: L2 {refit.L2:G3} kept of {refit.Candidates.Count} tried");
            if (record.Decision is { } decision) AnsiConsole.MarkupLine($"--mode auto: {Markup.Escape(decision)}");
            AnsiConsole.MarkupLine($"kept epoch {record.BestEpoch}" + (record.BestValidationAccuracy is { } a ? $" (validation accuracy {a:P1})" : "")
                + $"; trained groups: {string.Join(", ", record.TrainedGroups)}; {record.Seconds:F0}s");
            AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(settings.Out)}[/]" + (plot is null ? "" : $" and {Markup.Escape(plot)}"));
        }
        return 0;
    }
}
