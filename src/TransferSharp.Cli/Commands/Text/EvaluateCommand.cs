using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text.Classification;
using TransferSharp.Training;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text evaluate`: accuracy of a classifier on labelled data.</summary>
public sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : TextModelSettings
    {
        [CommandOption("-d|--data <FILE>")]
        [Description("Labelled data: fastText format, CSV or TSV.")]
        public string Data { get; init; } = "";

        public override ValidationResult Validate() =>
            string.IsNullOrWhiteSpace(Data) ? ValidationResult.Error("--model and --data are required") : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        Runtime.TorchRuntime.SetThreads(settings.Threads);
        using var model = TextModelFile.Open(settings);
        EvaluationReport evaluation;
        TransferSharp.Text.FastText.FastTextTestResult? fastTextTest = null;
        if (model.FastText is { } ft)
        {
            // fastText's own measure (P@1/R@1 over lines with known labels), and accuracy over every line.
            fastTextTest = ft.Test(settings.Data, 1);
            var data = TextDataset.Load(settings.Data);
            var predicted = model.Predict(data.Examples.Select(e => e.Text).ToList(), 1, 0).Select(p => p.Count > 0 ? TextModelFile.StripPrefix(p[0].Label) : "").ToList();
            evaluation = EvaluationReport.FromLabels(data.Examples.Select(e => e.Label).ToList(), predicted);
        }
        else evaluation = model.Ours!.Evaluate(TextDataset.Load(settings.Data));
        if (settings.Json)
        {
            Json.Print(new { model = settings.Model, data = settings.Data, evaluation, fastTextTest });
            return 0;
        }
        var table = new Table().AddColumn("label").AddColumn(new TableColumn("precision").RightAligned()).AddColumn(new TableColumn("recall").RightAligned())
            .AddColumn(new TableColumn("F1").RightAligned()).AddColumn(new TableColumn("support").RightAligned());
        foreach (var l in evaluation.PerClass) table.AddRow(Markup.Escape(l.Name), l.Precision.ToString("F3"), l.Recall.ToString("F3"), l.F1.ToString("F3"), l.Support.ToString());
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"accuracy [bold]{evaluation.Accuracy:P2}[/] on {evaluation.Count} texts, macro F1 {evaluation.MacroF1:F3}");
        if (fastTextTest is { } t) AnsiConsole.MarkupLine($"as fasttext test reports it: N {t.Examples}, P@1 {t.Precision:F3}, R@1 {t.Recall:F3}");
        return 0;
    }
}
