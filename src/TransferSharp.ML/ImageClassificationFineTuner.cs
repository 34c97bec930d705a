using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using TransferSharp.Data;
using TransferSharp.Training;
using TransferSharp.Vision;

namespace TransferSharp.ML;

/// <summary>What <see cref="ImageClassificationFineTuner"/> reads, trains and writes.</summary>
public sealed record FineTuneImageOptions
{
    /// <summary>The image column: file paths.</summary>
    public string ImageColumnName { get; init; } = "ImagePath";

    /// <summary>The label column: a key column (<c>MapValueToKey</c>); its key values name the classes.</summary>
    public string LabelColumnName { get; init; } = "Label";

    /// <summary>The class-probabilities column written.</summary>
    public string ScoreColumnName { get; init; } = "Score";

    /// <summary>The predicted-label column written (the label column's key type).</summary>
    public string PredictedLabelColumnName { get; init; } = "PredictedLabel";

    /// <summary>The pretrained model: a zoo name, an .onnx file or a trained TransferSharp model.</summary>
    public string Model { get; init; } = "resnet18_cntk";

    /// <summary>Weights for a zoo name ("imagenet", a tag, a checkpoint file); null for the default.</summary>
    public string? Weights { get; init; }

    /// <summary>Stage 1: epochs training the new head on the frozen body's features, computed once (one forward pass
    /// over the images; the epochs themselves take seconds).</summary>
    public int HeadEpochs { get; init; } = 30;

    /// <summary>Stage 2: epochs fine-tuning from that head with the top <see cref="Unfreeze"/> layer groups trainable
    /// (each one a forward and backward pass over the images); 0: the head alone.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Stage 2: top layer groups trainable, the head counting as one (2: the head and the last body group).</summary>
    public int Unfreeze { get; init; } = 2;

    /// <summary>Any other setting of either stage's training run (batch size, learning rates, seed, validation,
    /// progress); <c>run.Options.Mode</c> tells the stage (<see cref="TrainMode.Head"/>, then <see cref="TrainMode.FineTune"/>).</summary>
    public Func<TrainingRun, TrainingRun>? Configure { get; init; }
}

/// <summary>
/// An ML.NET multiclass trainer that fine-tunes a pretrained vision model with TransferSharp's training loop
/// (<see cref="Transfer"/>): ML.NET's <c>ImageClassificationTrainer</c> retrains the last layer of three TensorFlow
/// models; this one trains a new head and then unfreezes the top layer groups of any model TransferSharp opens.
/// The fitted transformer is a chain of ML.NET steps around the trained network exported to ONNX, so
/// <c>mlContext.Model.Save</c>/<c>Load</c> round-trips it into another process with identical scores.
/// Dispose the fitted transformer when done: it deletes the ONNX file its ONNX Runtime step reads from the temp folder.
/// </summary>
public sealed class ImageClassificationFineTuner : IEstimator<ITransformer>
{
    private const string ScoreCopy = "__ts_score";
    private const string ArgMaxIndex = "__ts_index";
    private readonly MLContext _ml = new(seed: 0);

    internal ImageClassificationFineTuner(FineTuneImageOptions options) => Options = options;

    /// <summary>The settings.</summary>
    public FineTuneImageOptions Options { get; }

    /// <summary>The training record of the last <see cref="Fit"/>'s last stage (fine-tuning, or the head when
    /// <see cref="FineTuneImageOptions.Epochs"/> is 0), or null.</summary>
    public TrainingRecord? LastTraining { get; private set; }

    /// <inheritdoc />
    public ITransformer Fit(IDataView input)
    {
        var o = Options;
        var image = Column(input.Schema, o.ImageColumnName);
        if (image.Type is not TextDataViewType)
            throw new ArgumentException($"column '{o.ImageColumnName}' is {image.Type}; the fine-tuning trainer reads image file paths (text)");
        var label = Column(input.Schema, o.LabelColumnName);
        if (label.Type is not KeyDataViewType { RawType: var raw } || raw != typeof(uint))
            throw new ArgumentException($"column '{o.LabelColumnName}' is {label.Type}; the label must be a key column (use MapValueToKey)");
        var classNames = ClassNames(label);
        var (paths, labels) = Read(input, image, label);
        var dataset = new ImageDataset(paths, labels, classNames, $"ML.NET data ('{o.ImageColumnName}', '{o.LabelColumnName}')");
        using var trained = Train(dataset);
        LastTraining = trained.Training;
        var step = new OnnxStep(trained.Module, trained.Preprocessing, probabilities: true);
        var classes = trained.Labels.Select((name, i) => new KeyValuePair<uint, string>((uint)i, name)).ToArray();
        var argMax = _ml.Transforms.CopyColumns(ScoreCopy, o.ScoreColumnName)
            .Append(_ml.Transforms.CustomMapping(new ArgMaxFactory().GetMapping(), ArgMaxFactory.Contract))
            .Append(_ml.Transforms.Conversion.MapValue(o.PredictedLabelColumnName, classes, ArgMaxIndex, treatValuesAsKeyType: true))
            .Append(_ml.Transforms.DropColumns(ScoreCopy, ArgMaxIndex));
        return step.Fit(_ml.Transforms, input, o.ImageColumnName, step.MainOutput, o.ScoreColumnName, argMax);
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ImageColumns.TypeOf(inputSchema, Options.ImageColumnName);
        if (!inputSchema.Any(c => c.Name == Options.LabelColumnName && c.IsKey))
            throw new ArgumentException($"the input needs a key column '{Options.LabelColumnName}' (use MapValueToKey)");
        // The same shapes as the fitted chain: a float vector with one value per class, and the label's key type.
        return _ml.Transforms.Conversion.MapKeyToVector(Options.ScoreColumnName, Options.LabelColumnName)
            .Append(_ml.Transforms.CopyColumns(Options.PredictedLabelColumnName, Options.LabelColumnName))
            .GetOutputSchema(inputSchema);
    }

    /// <summary>
    /// The schedule of TransferSharp's demo: a head trained to convergence on cached features (what a linear trainer
    /// on the featurizer's output does), then a short fine-tuning from it at a small rate, BatchNorm statistics of
    /// pretraining kept and mild crops. All the rows train (an ML.NET trainer gets its validation data apart), so
    /// the last epoch is kept.
    /// </summary>
    private VisionModel Train(ImageDataset dataset)
    {
        var o = Options;
        var head = Transfer.From(o.Model).WithWeights(o.Weights ?? "imagenet").Train(dataset).Head(o.HeadEpochs)
            .WithOptions(t => t with { BatchSize = 64, LearningRate = 3e-3, WeightDecay = 1e-4, ValidationSplit = 0, Seed = 0 });
        if (o.Configure is not null) head = o.Configure(head);
        var model = head.Run();
        if (o.Epochs == 0) return model;
        try
        {
            var tune = Transfer.From(o.Model).Train(dataset).WithOptions(_ =>
                TrainOptions.FineTuneFromHead(model.Architecture!.Head, o.Epochs, o.Unfreeze) with { ValidationSplit = 0, Seed = 0 });
            if (o.Configure is not null) tune = o.Configure(tune);
            // The head model is in memory: the run's settings go to the trainer, which fine-tunes it in place.
            Trainer.Train(model, tune.Data, tune.Validation, tune.Options, tune.RunOptions);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static DataViewSchema.Column Column(DataViewSchema schema, string name) =>
        schema.GetColumnOrNull(name) ?? throw new ArgumentException($"the input has no column '{name}' (columns: {string.Join(", ", schema.Select(c => c.Name))})");

    private static string[] ClassNames(DataViewSchema.Column label)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        if (label.Annotations.Schema.GetColumnOrNull("KeyValues") is null)
            throw new ArgumentException($"the label column '{label.Name}' has no key values (class names); make it with MapValueToKey");
        label.GetKeyValues(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    private static (List<string> Paths, List<int> Labels) Read(IDataView input, DataViewSchema.Column image, DataViewSchema.Column label)
    {
        var paths = new List<string>();
        var labels = new List<int>();
        using var cursor = input.GetRowCursor([image, label]);
        var getPath = cursor.GetGetter<ReadOnlyMemory<char>>(image);
        var getLabel = cursor.GetGetter<uint>(label);
        ReadOnlyMemory<char> path = default;
        uint key = 0;
        while (cursor.MoveNext())
        {
            getPath(ref path);
            getLabel(ref key);
            if (key == 0) throw new ArgumentException($"row {cursor.Position}: '{path}' has a missing label (key 0) in column '{label.Name}'");
            paths.Add(path.ToString());
            labels.Add((int)key - 1);
        }
        if (paths.Count == 0) throw new ArgumentException("the training data has no rows");
        return (paths, labels);
    }
}

/// <summary>A row of class probabilities.</summary>
public sealed class ScoreRow
{
    /// <summary>Probabilities.</summary>
    [ColumnName("__ts_score"), VectorType] public float[] Score { get; set; } = [];
}

/// <summary>The index of the most probable class.</summary>
public sealed class ArgMaxRow
{
    /// <summary>0-based class index.</summary>
    [ColumnName("__ts_index")] public uint Index { get; set; }
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class ArgMaxFactory : CustomMappingFactory<ScoreRow, ArgMaxRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ArgMax";

    /// <inheritdoc />
    public override Action<ScoreRow, ArgMaxRow> GetMapping() => (row, output) =>
    {
        int best = 0;
        for (int i = 1; i < row.Score.Length; i++) if (row.Score[i] > row.Score[best]) best = i;
        output.Index = (uint)best;
    };
}
