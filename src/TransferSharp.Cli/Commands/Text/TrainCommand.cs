using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Cli.Commands.Vectors;
using TransferSharp.Runtime;
using TransferSharp.Text;
using TransferSharp.Text.Classification;
using TransferSharp.Training;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text train`: a text classifier on pretrained word vectors.</summary>
public sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandOption("-d|--data <FILE>")]
        [Description("Training data: fastText format (__label__x text), CSV or TSV (text,label; a header may name the columns).")]
        public string Data { get; init; } = "";

        [CommandOption("--val <FILE>")]
        [Description("Validation data (same formats): loss and accuracy per epoch, the best epoch's weights are kept, and --patience can stop early.")]
        public string? Validation { get; init; }

        [CommandOption("--test <FILE>")]
        [Description("Test data evaluated once at the end.")]
        public string? Test { get; init; }

        [CommandOption("-m|--model <KIND>")]
        [Description("bow (mean of embeddings), cnn (Kim 2014) or bilstm.")]
        [DefaultValue("bow")]
        public string Model { get; init; } = "bow";

        [CommandOption("-o|--out <MODEL>")]
        [Description("Where to save the classifier (.safetensors; written only when training completes).")]
        public string Out { get; init; } = "";

        [CommandOption("--checkpoint <FILE>")]
        [Description("Checkpoint written after every epoch (default: OUT.checkpoint). Deleted when training completes.")]
        public string? Checkpoint { get; init; }

        [CommandOption("--resume")]
        [Description("Continue a stopped run from its checkpoint (same settings, data and vectors): it ends as the uninterrupted run would.")]
        public bool Resume { get; init; }

        [CommandOption("--epochs <N>")]
        [DefaultValue(10)]
        [Description("Passes over the training data.")]
        public int Epochs { get; init; } = 10;

        [CommandOption("--batch-size <N>")]
        [DefaultValue(32)]
        [Description("Texts per step.")]
        public int BatchSize { get; init; } = 32;

        [CommandOption("--lr <RATE>")]
        [DefaultValue(0.001)]
        [Description("Adam learning rate of the layers above the embeddings.")]
        public double LearningRate { get; init; } = 0.001;

        [CommandOption("--schedule <NAME>")]
        [Description("constant (default), cosine or step (every 10 epochs × 0.1), after warm-up; both learning rates follow it.")]
        [DefaultValue("constant")]
        public string Schedule { get; init; } = "constant";

        [CommandOption("--warmup <EPOCHS>")]
        [Description("Linear warm-up of the learning rates at the start, in epochs.")]
        [DefaultValue(0.0)]
        public double Warmup { get; init; }

        [CommandOption("--patience <N>")]
        [Description("Early stopping: end training after N epochs without a better validation score (needs --val; 0: off).")]
        [DefaultValue(0)]
        public int Patience { get; init; }

        [CommandOption("--embedding-lr <RATE>")]
        [Description("Learning rate of the embeddings when fine-tuned (default: --lr).")]
        public double? EmbeddingLearningRate { get; init; }

        [CommandOption("--freeze")]
        [Description("Keep the pretrained embeddings fixed (feature extraction).")]
        public bool Freeze { get; init; }

        [CommandOption("--max-length <N>")]
        [DefaultValue(256)]
        [Description("Tokens kept per text.")]
        public int MaxLength { get; init; } = 256;

        [CommandOption("--min-count <N>")]
        [DefaultValue(1)]
        [Description("Training words seen fewer times become <unk>.")]
        public int MinCount { get; init; } = 1;

        [CommandOption("--lowercase")]
        [Description("Lower-case texts (for lower-cased vectors such as GloVe).")]
        public bool Lowercase { get; init; }

        [CommandOption("--embedding-dim <N>")]
        [DefaultValue(100)]
        [Description("Embedding size without --vectors (random initialisation).")]
        public int EmbeddingDimension { get; init; } = 100;

        [CommandOption("--dropout <P>")]
        [DefaultValue(0.5)]
        [Description("Dropout before the output layer.")]
        public double Dropout { get; init; } = 0.5;

        [CommandOption("--seed <N>")]
        [DefaultValue(1)]
        [Description("Seed for initialisation, shuffling and dropout.")]
        public int Seed { get; init; } = 1;

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data FILE is required");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out MODEL.safetensors is required");
            if (ModelKind(Model) is null) return ValidationResult.Error($"unknown --model '{Model}' (bow, cnn, bilstm)");
            if (Epochs < 1 || BatchSize < 1 || MaxLength < 1) return ValidationResult.Error("--epochs, --batch-size and --max-length must be at least 1");
            return string.IsNullOrWhiteSpace(Vectors) ? ValidationResult.Success() : base.Validate();
        }
    }

    public static TextModelKind? ModelKind(string name) => name.ToLowerInvariant() switch
    {
        "bow" or "bag" => TextModelKind.Bow,
        "cnn" or "kim" => TextModelKind.Cnn,
        "bilstm" or "lstm" => TextModelKind.BiLstm,
        _ => null,
    };

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        var train = TextDataset.Load(settings.Data);
        var validation = settings.Validation is null ? null : TextDataset.Load(settings.Validation);
        var test = settings.Test is null ? null : TextDataset.Load(settings.Test);
        using var vectors = string.IsNullOrWhiteSpace(settings.Vectors) ? null : VectorsLoader.Load(settings, cancellation);
        var options = new TextClassifierOptions
        {
            Model = ModelKind(settings.Model)!.Value, Epochs = settings.Epochs, BatchSize = settings.BatchSize, LearningRate = settings.LearningRate,
            EmbeddingLearningRate = settings.EmbeddingLearningRate, FreezeEmbeddings = settings.Freeze, MaxLength = settings.MaxLength,
            MinCount = settings.MinCount, Lowercase = settings.Lowercase, EmbeddingDimension = settings.EmbeddingDimension,
            Dropout = settings.Dropout, Seed = settings.Seed, Schedule = Commands.TrainCommand.ParseSchedule(settings.Schedule), WarmupEpochs = settings.Warmup,
            Patience = settings.Patience,
        };
        var checkpoint = new CheckpointOptions { Path = settings.Checkpoint ?? settings.Out + ".checkpoint", Resume = settings.Resume };
        if (!settings.Json)
            ConsoleUi.Err.MarkupLine(Markup.Escape($"{train.Examples.Count} training texts, {train.Labels.Count} labels"
                + (validation is null ? "" : $", {validation.Examples.Count} validation texts")
                + (vectors is null ? $"; random {options.EmbeddingDimension}-d embeddings" : $"; vectors {vectors.Count:N0} × {vectors.Dimension} from {settings.Vectors}")));
        var classifier = Train(train, validation, vectors, options, checkpoint, settings.Json, cancellation);
        using (classifier)
        {
            classifier.Save(settings.Out);
            var testResult = test is null ? null : classifier.Evaluate(test);
            var summary = new
            {
                model = settings.Out, kind = options.Model.ToString().ToLowerInvariant(), labels = classifier.Labels, vocabulary = classifier.Vocabulary.Count,
                embeddingDimension = classifier.EmbeddingDimension, coverage = classifier.Coverage, trainableParameters = classifier.TrainableParameters,
                frozenEmbeddings = options.FreezeEmbeddings, history = classifier.History, bestEpoch = classifier.BestEpoch, stoppedEarly = classifier.StoppedEarly,
                test = testResult == null ? null : new { testResult.Count, testResult.Accuracy, testResult.MacroF1, testResult.PerClass },
            };
            if (settings.Json)
            {
                Json.Print(summary);
                return 0;
            }
            var table = new Table().AddColumn(new TableColumn("epoch").RightAligned()).AddColumn(new TableColumn("loss").RightAligned())
                .AddColumn(new TableColumn("train acc").RightAligned()).AddColumn(new TableColumn("val loss").RightAligned()).AddColumn(new TableColumn("val acc").RightAligned()).AddColumn(new TableColumn("lr").RightAligned())
                .AddColumn(new TableColumn("time").RightAligned());
            foreach (var h in classifier.History)
                table.AddRow(h.Epoch.ToString(), h.TrainLoss.ToString("F4"), h.TrainAccuracy.ToString("P1"), h.ValidationLoss?.ToString("F4") ?? "—", h.ValidationAccuracy?.ToString("P1") ?? "—",
                    h.LearningRate.ToString("G3"), $"{h.Seconds:F1} s");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"kept epoch {classifier.BestEpoch}" + (classifier.StoppedEarly ? " (stopped early)" : ""));
            if (classifier.Coverage is { } c)
                AnsiConsole.MarkupLine(Markup.Escape($"vocabulary {classifier.Vocabulary.Count:N0}: {c.Pretrained} pretrained, {c.Lowercased} via lower case, {c.Subword} fastText subword, {c.Random} random ({c.Coverage:P1} covered)"));
            if (testResult is not null) AnsiConsole.MarkupLine($"test accuracy [bold]{testResult.Accuracy:P2}[/] ({testResult.Count} texts), macro F1 {testResult.MacroF1:F3}");
            AnsiConsole.MarkupLine($"saved [bold]{Markup.Escape(settings.Out)}[/]");
        }
        return 0;
    }

    private static TextClassifier Train(TextDataset train, TextDataset? validation, WordVectors? vectors, TextClassifierOptions options, CheckpointOptions checkpoint,
        bool quiet, CancellationToken cancellation)
    {
        if (quiet || Console.IsErrorRedirected)
            return TextClassifier.Train(train, validation, vectors, options, new TrainRunOptions { Checkpoint = checkpoint }, cancellation);
        TextClassifier? result = null;
        VectorsLoader.WithProgressBars(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: options.Epochs);
                EpochRecord? last = null;
                var progress = new ConsoleUi.SyncProgress<ProgressInfo>(p =>
                {
                    if (p.Phase != "train") return;
                    task.Description = $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F4}" + (last?.ValidationAccuracy is { } a ? $" (val {a:P1} after epoch {last.Epoch})" : "");
                    task.Value = p.Epoch - 1 + (double)p.Done / Math.Max(1, p.Total);
                });
                var run = new TrainRunOptions { Checkpoint = checkpoint, Progress = progress, OnEpoch = e => last = e };
                result = TextClassifier.Train(train, validation, vectors, options, run, cancellation);
            });
        return result!;
    }
}
