using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using TransferSharp.Data;
using TransferSharp.Vision.Inference;

namespace TransferSharp.Training;

/// <summary>
/// The workflows in a few fluent calls, mirroring the CLI:
/// <code>
/// using var model = Transfer.From("resnet50")                      // weights: imagenet
///     .Train(ImageDataset.FromFolder("photos/train"))
///     .ValidateOn(ImageDataset.FromFolder("photos/val"))
///     .FineTune(epochs: 9, unfreeze: 2)
///     .Run();
/// model.Save("model.safetensors");
/// var report = model.Evaluate(ImageDataset.FromFolder("photos/test"));
/// </code>
/// </summary>
public sealed record Transfer
{
    private Transfer(string model) => Model = model;

    /// <summary>Zoo name or model file.</summary>
    public string Model { get; }

    /// <summary>Weights of a zoo model ("imagenet", a tag, a file, "none").</summary>
    public string? Weights { get; init; } = "imagenet";

    /// <summary>Input crop size (null: the weights' size).</summary>
    public int? ImageSize { get; init; }

    /// <summary>Starts from a zoo model (with its default pretrained weights) or a saved model file.</summary>
    public static Transfer From(string model) => new(model);

    /// <summary>Other weights: "imagenet", a tag, a weights file, or "none" for random initialisation.</summary>
    public Transfer WithWeights(string weights) => this with { Weights = weights };

    /// <summary>Another input size (the crop; the resize keeps the weights' crop ratio).</summary>
    public Transfer WithImageSize(int pixels) => this with { ImageSize = pixels };

    /// <summary>Opens the model (downloads weights when needed). The caller disposes it.</summary>
    public VisionModel Open(CancellationToken cancellation = default) => Open(ImageSize, cancellation);

    internal VisionModel Open(int? imageSize, CancellationToken cancellation) =>
        VisionModel.Load(Model, Weights, new ModelOptions { ImageSize = imageSize }, null, cancellation); // a model file ignores the weights

    /// <summary>How many times the images' shorter side the input of a zoo model is, by default, for images smaller than its
    /// native input (measured in docs/workflows.md: accuracy levels off there, while time keeps growing with the pixels).</summary>
    public const double ThumbnailUpscale = 5;

    /// <summary>
    /// The input size training on <paramref name="data"/> uses: <see cref="ImageSize"/> when set; for a zoo model and images
    /// smaller than its native input (28-pixel garments, 32-pixel thumbnails), <see cref="ThumbnailUpscale"/> times their
    /// typical shorter side rounded up to a multiple of 32, at least 64 (160 for both: 224 took about twice the time for no
    /// better accuracy, docs/workflows.md), and otherwise null (the weights' own size). Model files keep the size they were trained at.
    /// </summary>
    public int? ImageSizeFor(Dataset data)
    {
        if (ImageSize is not null || !ModelZoo.Contains(Model) || data is not ImageDataset images) return ImageSize;
        int native = ModelZoo.Get(Model).NativeSize;
        if (images.TypicalShortSide() is not { } side) return null;
        int size = Math.Max(64, (int)Math.Ceiling(side * ThumbnailUpscale / 32) * 32);
        return size < native ? size : null;
    }

    /// <summary>Pooled features of every sample; with <paramref name="outputPath"/> (.parquet/.npy/.csv) also written, resumably.</summary>
    public FeatureSet ExtractFeatures(Dataset data, string? outputPath = null, ExtractOptions? options = null, IProgress<ProgressInfo>? progress = null,
        CancellationToken cancellation = default)
    {
        using var source = Open(cancellation);
        return outputPath is null
            ? FeatureExtractor.Extract(source, data, options, null, progress, cancellation)
            : FeatureExtractor.ExtractToFile(source, data, outputPath, options, null, progress, cancellation);
    }

    /// <summary>Begins a training run on <paramref name="data"/>.</summary>
    public TrainingRun Train(Dataset data) => new(this, data);
}

/// <summary>A training run being configured; <see cref="Run"/> trains.</summary>
public sealed record TrainingRun
{
    internal TrainingRun(Transfer source, Dataset data)
    {
        Source = source;
        Data = data;
    }

    /// <summary>The starting model.</summary>
    public Transfer Source { get; }

    /// <summary>Training data.</summary>
    public Dataset Data { get; }

    /// <summary>Validation data (null: a split of the training data).</summary>
    public Dataset? Validation { get; init; }

    /// <summary>The settings.</summary>
    public TrainOptions Options { get; init; } = new();

    /// <summary>Checkpoints, progress, epoch callback, bad-image log.</summary>
    public TrainRunOptions RunOptions { get; init; } = new();

    /// <summary>Validates on this data instead of a split of the training data.</summary>
    public TrainingRun ValidateOn(Dataset validation) => this with { Validation = validation, Options = Options with { ValidationSplit = 0 } };

    /// <summary>Holds out this fraction of the training data (stratified, seeded) for validation.</summary>
    public TrainingRun ValidationSplit(double fraction) => this with { Validation = null, Options = Options with { ValidationSplit = fraction } };

    /// <summary>Trains a new head on cached features of the frozen body. A linear head is fitted by L-BFGS to convergence
    /// (<see cref="HeadSolver.Lbfgs"/>, <paramref name="epochs"/> unused); an MLP head, or <see cref="HeadSolver.Epochs"/>, trains for the epochs.</summary>
    public TrainingRun Head(int epochs, HeadKind kind = HeadKind.Linear) =>
        this with { Options = Options with { Mode = TrainMode.Head, Epochs = epochs, Head = Options.Head with { Kind = kind } } };

    /// <summary>Fine-tunes as <c>transfer train --mode finetune</c> does: the head first — by <paramref name="headEpochs"/> epochs
    /// on augmented images, or by default (null) fitted by L-BFGS on cached features of the training split — then the
    /// measured recipe (<see cref="TrainOptions.FineTuneFromHead"/>: its rates, one-cycle schedule, label smoothing and crops)
    /// for <paramref name="epochs"/> epochs (default <see cref="TrainOptions.FineTuneEpochs"/>) over the top
    /// <paramref name="unfreeze"/> groups (default: all but the stem). The recipe's settings replace these options' own;
    /// change any of them afterwards with <see cref="WithOptions"/>.</summary>
    public TrainingRun FineTune(int? epochs = null, int? unfreeze = null, int? headEpochs = null)
    {
        var recipe = TrainOptions.FineTuneFromHead(Options.Head, epochs, unfreeze);
        return this with
        {
            Options = Options with
            {
                Mode = TrainMode.FineTune, Epochs = recipe.Epochs, HeadEpochs = headEpochs, UnfreezeTop = recipe.UnfreezeTop, UnfreezeFrom = null,
                BatchSize = recipe.BatchSize, LearningRate = recipe.LearningRate, BodyLearningRateFactor = recipe.BodyLearningRateFactor,
                Schedule = recipe.Schedule, WarmupEpochs = recipe.WarmupEpochs, LabelSmoothing = recipe.LabelSmoothing,
                FreezeBatchNorm = recipe.FreezeBatchNorm, Augmentation = recipe.Augmentation,
            },
        };
    }

    /// <summary>Changes any other setting.</summary>
    public TrainingRun WithOptions(Func<TrainOptions, TrainOptions> change) => this with { Options = change(Options) };

    /// <summary>Writes a checkpoint after every epoch; with <paramref name="resume"/>, continues from it if it exists.</summary>
    public TrainingRun Checkpoint(string path, bool resume = false) =>
        this with { RunOptions = RunOptions with { Checkpoint = new CheckpointOptions { Path = path, Resume = resume } } };

    /// <summary>Reports progress and every finished epoch.</summary>
    public TrainingRun Report(IProgress<ProgressInfo>? progress, Action<EpochRecord>? onEpoch = null) =>
        this with { RunOptions = RunOptions with { Progress = progress, OnEpoch = onEpoch } };

    /// <summary>Opens the model, trains it and returns it (the caller disposes it).</summary>
    public VisionModel Run(CancellationToken cancellation = default)
    {
        var model = Source.Open(Source.ImageSizeFor(Data), cancellation);
        try
        {
            Trainer.Train(model, Data, Validation, Options, RunOptions, cancellation);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}

/// <summary>Evaluation and prediction straight from a model.</summary>
public static class VisionModelExtensions
{
    /// <summary>Accuracy, top-k, per-class metrics and the confusion matrix on labelled data.</summary>
    public static EvaluationReport Evaluate(this VisionModel model, Dataset data, EvaluateOptions? options = null, CancellationToken cancellation = default) =>
        Evaluator.Evaluate(model, data, options, null, null, cancellation);

    /// <summary>Top-k classes of image files.</summary>
    public static IReadOnlyList<Prediction> Predict(this VisionModel model, IReadOnlyList<string> imagePaths, int top = 3, CancellationToken cancellation = default)
    {
        using var predictor = model.CreatePredictor();
        return predictor.Predict(imagePaths, top, cancellation);
    }
}
