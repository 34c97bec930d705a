using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer evaluate`: accuracy, top-k, per-class precision/recall/F1 and the confusion matrix of a trained model.</summary>
public sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : WorkflowSettings
    {
        [CommandOption("-k|--top-k <K>")]
        [DefaultValue(5)]
        [Description("k of the top-k accuracy.")]
        public int TopK { get; init; } = 5;

        [CommandOption("-b|--batch-size <N>")]
        [DefaultValue(32)]
        [Description("Images per forward pass.")]
        public int BatchSize { get; init; } = 32;

        [CommandOption("--confusion-png <FILE>")]
        [Description("Also draw the confusion matrix into this PNG.")]
        public string? ConfusionPng { get; init; }

        [CommandOption("--plots <DIR>")]
        [Description("Write confusion.png (the confusion matrix) and top-losses.png (the samples of highest loss with predicted and true class) into this folder.")]
        public string? Plots { get; init; }

        [CommandOption("--top-losses <N>")]
        [DefaultValue(9)]
        [Description("Samples in top-losses.png.")]
        public int TopLosses { get; init; } = 9;

        [CommandOption("--tta")]
        [Description("Test-time augmentation: score each image as the mean of its and its mirror image's probabilities (twice the inference time; see docs/workflows.md for what it gains). Refused for a model trained with --no-flip.")]
        public bool Tta { get; init; }

        public override ValidationResult Validate()
        {
            return RequireModelAndData();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        using var model = VisionModel.Load(settings.Model);
        var data = ImageDataset.Open(settings.Data);
        var bad = new BadImageLog();
        var options = new EvaluateOptions { TopK = settings.TopK, Device = settings.Device, Loader = WorkflowConsole.Loader(settings.BatchSize, settings.Workers, settings.OnBadImage), Tta = settings.Tta };
        var report = Evaluator.Evaluate(model, data, options, bad, settings.Json ? null : new WorkflowConsole.ProgressLine(), cancellation);
        var name = Path.GetFileNameWithoutExtension(settings.Model);
        if (settings.ConfusionPng is { } png) report.SaveConfusionMatrixPng(png, name);
        string[] pictures = [];
        if (settings.Plots is { } dir && report.Count > 0)
        {
            Directory.CreateDirectory(dir);
            pictures = [Path.Combine(dir, "confusion.png"), Path.Combine(dir, "top-losses.png")];
            report.SaveConfusionMatrixPng(pictures[0], name);
            report.SaveTopLossesPng(model, data, pictures[1], Math.Max(1, settings.TopLosses), name);
        }
        if (settings.Json)
        {
            Json.Print(new
            {
                Model = settings.Model, Data = data.Origin, report.Count, report.Accuracy, report.TopK, report.TopKAccuracy, report.Loss,
                report.MacroPrecision, report.MacroRecall, report.MacroF1, settings.Tta, PerClass = report.PerClass, Classes = report.ClassNames,
                report.ConfusionMatrix, ConfusionPng = settings.ConfusionPng, Plots = pictures,
                TopLosses = report.TopLosses(Math.Max(1, settings.TopLosses)).Select(s => new { s.Source, True = report.ClassNames[s.Truth], Predicted = report.ClassNames[s.Predicted], s.Probability, s.Loss }), BadImages = WorkflowConsole.BadImagesJson(bad),
            });
            return 0;
        }
        var t = new Table().AddColumns("class", "support", "precision", "recall", "F1").Border(TableBorder.Simple);
        foreach (var c in report.PerClass) t.AddRow(Markup.Escape(c.Name), c.Support.ToString(), c.Precision.ToString("F3"), c.Recall.ToString("F3"), c.F1.ToString("F3"));
        t.AddRow("[bold]macro[/]", report.Count.ToString(), report.MacroPrecision.ToString("F3"), report.MacroRecall.ToString("F3"), report.MacroF1.ToString("F3"));
        AnsiConsole.Write(t);
        AnsiConsole.WriteLine("confusion matrix (rows: true, columns: predicted):");
        AnsiConsole.Write(new Spectre.Console.Text(report.ConfusionMatrixText()));
        AnsiConsole.MarkupLine($"accuracy [bold]{report.Accuracy:P2}[/], top-{report.TopK} {report.TopKAccuracy:P2} on {report.Count} images" + (report.Loss is { } l ? $", loss {l:F4}" : ""));
        if (settings.ConfusionPng is { } p) AnsiConsole.MarkupLine($"wrote {Markup.Escape(p)}");
        foreach (var picture in pictures) AnsiConsole.MarkupLine($"wrote {Markup.Escape(picture)}");
        WorkflowConsole.ReportBadImages(bad);
        return 0;
    }
}
