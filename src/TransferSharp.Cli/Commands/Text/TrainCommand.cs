using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Cli.Commands.Vectors;
using TransferSharp.Runtime;
using TransferSharp.Text;
using TransferSharp.Text.Classification;
using TransferSharp.Text.Transformers;
using TransferSharp.Training;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text train`: a text classifier on pretrained word vectors or on a pretrained transformer encoder.</summary>
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

        [CommandOption("-m|--model <MODEL>")]
        [Description("bow (mean of embeddings), cnn (Kim 2014) or bilstm on word vectors (--vectors); or a pretrained transformer encoder to put a classifier on: "
            + "a Hugging Face/sentence-transformers folder, an .onnx encoder with vocab.txt beside it, or a catalog name such as all-MiniLM-L6-v2.")]
        [DefaultValue("bow")]
        public string Model { get; init; } = "bow";

        [CommandOption("--mode <MODE>")]
        [Description("Encoder only. finetune (default): encoder and head train together (AdamW, --encoder-lr for the encoder, --lr for the head, warm-up then linear decay). "
            + "head: the frozen encoder embeds the texts once and a logistic-regression head is fitted to convergence, its L2 chosen on --val (fast; no epochs).")]
        public string? Mode { get; init; }

        [CommandOption("-o|--out <MODEL>")]
        [Description("Where to save the classifier (.safetensors; written only when training completes).")]
        public string Out { get; init; } = "";

        [CommandOption("--checkpoint <FILE>")]
        [Description("Checkpoint written after every epoch (default: OUT.checkpoint). Deleted when training completes.")]
        public string? Checkpoint { get; init; }

        [CommandOption("--resume")]
        [Description("Continue a stopped run from its checkpoint (same settings, data and vectors or encoder): it ends as the uninterrupted run would.")]
        public bool Resume { get; init; }

        [CommandOption("--epochs <N>")]
        [Description("Passes over the training data (default 10; encoder: 3).")]
        public int? Epochs { get; init; }

        [CommandOption("--batch-size <N>")]
        [Description("Texts per step (default 32).")]
        public int? BatchSize { get; init; }

        [CommandOption("--lr <RATE>")]
        [Description("Learning rate of the layers above the embeddings (Adam), or of an encoder's head (AdamW) (default 0.001).")]
        public double? LearningRate { get; init; }

        [CommandOption("--encoder-lr <RATE>")]
        [Description("Encoder, --mode finetune: the encoder's learning rate (default 5e-5).")]
        public double? EncoderLearningRate { get; init; }

        [CommandOption("--schedule <NAME>")]
        [Description("constant, cosine, step (every 10 epochs × 0.1) or linear (to 0 at the end), after warm-up; every learning rate follows it. Default constant; encoder: linear.")]
        public string? Schedule { get; init; }

        [CommandOption("--warmup <EPOCHS>")]
        [Description("Linear warm-up of the learning rates at the start, in epochs (default 0; encoder: a tenth of --epochs).")]
        public double? Warmup { get; init; }

        [CommandOption("--patience <N>")]
        [Description("Early stopping: end training after N epochs without a better validation score (needs --val; 0: off).")]
        [DefaultValue(0)]
        public int Patience { get; init; }

        [CommandOption("--embedding-lr <RATE>")]
        [Description("Learning rate of the embeddings when fine-tuned (default: --lr).")]
        public double? EmbeddingLearningRate { get; init; }

        [CommandOption("--freeze")]
        [Description("Keep the pretrained embeddings fixed (feature extraction; for an encoder, use --mode head).")]
        public bool Freeze { get; init; }

        [CommandOption("--max-length <N>")]
        [Description("Tokens kept per text (default 256; encoder: 128 WordPiece tokens, [[CLS]] and [[SEP]] included).")]
        public int? MaxLength { get; init; }

        [CommandOption("--min-count <N>")]
        [Description("Training words seen fewer times become <unk> (default 1).")]
        public int? MinCount { get; init; }

        [CommandOption("--lowercase")]
        [Description("Lower-case texts (for lower-cased vectors such as GloVe).")]
        public bool Lowercase { get; init; }

        [CommandOption("--embedding-dim <N>")]
        [Description("Embedding size without --vectors (random initialisation; default 100).")]
        public int? EmbeddingDimension { get; init; }

        [CommandOption("--dropout <P>")]
        [Description("Dropout before the output layer (default 0.5; encoder: 0.1).")]
        public double? Dropout { get; init; }

        [CommandOption("--seed <N>")]
        [DefaultValue(1)]
        [Description("Seed for initialisation, shuffling and dropout.")]
        public int Seed { get; init; } = 1;

        /// <summary>True when --model names an encoder rather than a word-vector architecture.</summary>
        public bool IsEncoder => ModelKind(Model) is null;

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data FILE is required");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out MODEL.safetensors is required");
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is empty: bow, cnn, bilstm or an encoder (folder, .onnx or name)");
            if (Epochs < 1 || BatchSize < 1 || MaxLength < 1) return ValidationResult.Error("--epochs, --batch-size and --max-length must be at least 1");
            if (Refused() is { } refused) return ValidationResult.Error(refused);
            return string.IsNullOrWhiteSpace(Vectors) ? ValidationResult.Success() : base.Validate();
        }

        /// <summary>The first option given that does not apply to the chosen --model and --mode, as a message.</summary>
        private string? Refused()
        {
            static IEnumerable<string> Given(params (string Flag, bool Set)[] options) => options.Where(o => o.Set).Select(o => o.Flag);
            if (!IsEncoder)
            {
                var encoderOnly = Given(("--mode", Mode is not null), ("--encoder-lr", EncoderLearningRate is not null)).FirstOrDefault();
                return encoderOnly is null ? null : $"{encoderOnly} applies to an encoder --model (a folder, .onnx file or name), not to '{Model}'";
            }
            var wordOnly = Given(("--vectors", !string.IsNullOrWhiteSpace(Vectors)), ("--freeze", Freeze), ("--embedding-lr", EmbeddingLearningRate is not null),
                ("--min-count", MinCount is not null), ("--lowercase", Lowercase), ("--embedding-dim", EmbeddingDimension is not null)).FirstOrDefault();
            if (wordOnly is not null)
                return $"{wordOnly} applies to the word-vector models (bow, cnn, bilstm); the encoder '{Model}' brings its own tokenizer and weights"
                    + (wordOnly == "--freeze" ? " (for a frozen encoder use --mode head)" : wordOnly == "--embedding-lr" ? " (its rate is --encoder-lr)" : "");
            if (Mode is not null && ParseMode(Mode) is null) return $"unknown --mode '{Mode}' (head, finetune)";
            if (ParseMode(Mode) != TrainMode.Head) return null;
            var epochOnly = Given(("--epochs", Epochs is not null), ("--lr", LearningRate is not null), ("--encoder-lr", EncoderLearningRate is not null),
                ("--schedule", Schedule is not null), ("--warmup", Warmup is not null), ("--patience", Patience != 0), ("--dropout", Dropout is not null),
                ("--checkpoint", Checkpoint is not null), ("--resume", Resume)).FirstOrDefault();
            return epochOnly is null ? null
                : $"{epochOnly} applies to --mode finetune: --mode head fits the head to convergence on cached embeddings, without epochs (its L2 is chosen on --val)";
        }
    }

    /// <summary>The --mode of an encoder (default fine-tuning), or null for an unknown name.</summary>
    internal static TrainMode? ParseMode(string? name) => name?.ToLowerInvariant() switch
    {
        null or "finetune" or "fine-tune" => TrainMode.FineTune,
        "head" => TrainMode.Head,
        _ => null,
    };

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
        var options = Options(settings);
        var checkpoint = new CheckpointOptions { Path = settings.Checkpoint ?? settings.Out + ".checkpoint", Resume = settings.Resume };
        TextClassifier classifier;
        if (settings.IsEncoder)
        {
            // The classifier takes the encoder over (and disposes it with itself).
            var encoder = TextEncoder.Load(settings.Model);
            if (!settings.Json)
                ConsoleUi.Err.MarkupLine(Markup.Escape($"{train.Examples.Count} training texts, {train.Labels.Count} labels"
                    + (validation is null ? "" : $", {validation.Examples.Count} validation texts")
                    + $"; encoder {encoder.Name} ({encoder.Dimension}-d, {encoder.Pooling.ToString().ToLowerInvariant()} pooling), mode {(options.Mode == TrainMode.Head ? "head" : "finetune")}"));
            classifier = Train(options, settings.Json, run => TextClassifier.Train(encoder, train, validation, options, run with { Checkpoint = checkpoint }, cancellation));
        }
        else
        {
            using var vectors = string.IsNullOrWhiteSpace(settings.Vectors) ? null : VectorsLoader.Load(settings, cancellation);
            if (!settings.Json)
                ConsoleUi.Err.MarkupLine(Markup.Escape($"{train.Examples.Count} training texts, {train.Labels.Count} labels"
                    + (validation is null ? "" : $", {validation.Examples.Count} validation texts")
                    + (vectors is null ? $"; random {options.EmbeddingDimension}-d embeddings" : $"; vectors {vectors.Count:N0} × {vectors.Dimension} from {settings.Vectors}")));
            classifier = Train(options, settings.Json, run => TextClassifier.Train(train, validation, vectors, options, run with { Checkpoint = checkpoint }, cancellation));
        }
        using (classifier)
        {
            classifier.Save(settings.Out);
            var testResult = test is null ? null : classifier.Evaluate(test);
            var summary = new
            {
                model = settings.Out, kind = options.Model.ToString().ToLowerInvariant(), encoder = classifier.Encoder?.Name,
                mode = classifier.Encoder is null ? null : options.Mode == TrainMode.Head ? "head" : "finetune", labels = classifier.Labels,
                vocabulary = classifier.Vocabulary?.Count ?? classifier.Encoder?.Tokenizer.VocabularySize, embeddingDimension = classifier.EmbeddingDimension,
                coverage = classifier.Coverage, trainableParameters = classifier.TrainableParameters, frozenEmbeddings = options.FreezeEmbeddings,
                headFit = classifier.HeadFit, history = classifier.History, bestEpoch = classifier.BestEpoch, stoppedEarly = classifier.StoppedEarly,
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
            if (classifier.HeadFit is { } fit)
                AnsiConsole.MarkupLine(Markup.Escape($"head fitted on the frozen encoder's embeddings: L2 {fit.L2:G2} of {fit.Candidates.Count} tried" + (fit.Converged ? "" : " (not converged)")));
            else AnsiConsole.MarkupLine($"kept epoch {classifier.BestEpoch}" + (classifier.StoppedEarly ? " (stopped early)" : ""));
            if (classifier.Coverage is { } c && classifier.Vocabulary is { } vocabulary)
                AnsiConsole.MarkupLine(Markup.Escape($"vocabulary {vocabulary.Count:N0}: {c.Pretrained} pretrained, {c.Lowercased} via lower case, {c.Subword} fastText subword, {c.Random} random ({c.Coverage:P1} covered)"));
            if (testResult is not null) AnsiConsole.MarkupLine($"test accuracy [bold]{testResult.Accuracy:P2}[/] ({testResult.Count} texts), macro F1 {testResult.MacroF1:F3}");
            AnsiConsole.MarkupLine($"saved [bold]{Markup.Escape(settings.Out)}[/]");
        }
        return 0;
    }

    /// <summary>The options of the chosen --model: the library's defaults for its family, overridden by the flags given.</summary>
    internal static TextClassifierOptions Options(Settings s)
    {
        var d = s.IsEncoder ? TextClassifierOptions.ForEncoder(ParseMode(s.Mode)!.Value) : new TextClassifierOptions { Model = ModelKind(s.Model)!.Value };
        int epochs = s.Epochs ?? d.Epochs;
        return d with
        {
            Epochs = epochs, BatchSize = s.BatchSize ?? d.BatchSize, LearningRate = s.LearningRate ?? d.LearningRate,
            EncoderLearningRate = s.EncoderLearningRate ?? d.EncoderLearningRate, EmbeddingLearningRate = s.EmbeddingLearningRate,
            FreezeEmbeddings = s.Freeze, MaxLength = s.MaxLength ?? d.MaxLength, MinCount = s.MinCount ?? d.MinCount, Lowercase = s.Lowercase,
            EmbeddingDimension = s.EmbeddingDimension ?? d.EmbeddingDimension, Dropout = s.Dropout ?? d.Dropout, Seed = s.Seed,
            Schedule = s.Schedule is null ? d.Schedule : Commands.TrainCommand.ParseSchedule(s.Schedule),
            // BERT's recipe warms up over the first tenth of the steps, whatever the number of epochs.
            WarmupEpochs = s.Warmup ?? (s.IsEncoder ? 0.1 * epochs : d.WarmupEpochs),
            Patience = s.Patience,
        };
    }

    private static TextClassifier Train(TextClassifierOptions options, bool quiet, Func<TrainRunOptions, TextClassifier> train)
    {
        if (quiet || Console.IsErrorRedirected) return train(new TrainRunOptions());
        TextClassifier? result = null;
        VectorsLoader.WithProgressBars(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: options.Epochs);
                EpochRecord? last = null;
                var progress = new ConsoleUi.SyncProgress<ProgressInfo>(p =>
                {
                    switch (p.Phase)
                    {
                        case "encode": // head mode: the frozen encoder embeds the training, then the validation texts
                            task.Description = $"embedding texts {p.Done}/{p.Total}";
                            task.Value = options.Epochs * (double)p.Done / Math.Max(1, p.Total);
                            break;
                        case "fit head":
                            task.Description = $"fitting the head: L2 {p.Done}/{p.Total}";
                            break;
                        case "train":
                            task.Description = $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F4}" + (last?.ValidationAccuracy is { } a ? $" (val {a:P1} after epoch {last.Epoch})" : "");
                            task.Value = p.Epoch - 1 + (double)p.Done / Math.Max(1, p.Total);
                            break;
                    }
                });
                result = train(new TrainRunOptions { Progress = progress, OnEpoch = e => last = e });
            });
        return result!;
    }
}
