using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer summary`: layers, output shapes, parameters, MACs and layer groups of a model.</summary>
public sealed class SummaryCommand : Command<SummaryCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <NAME>")]
        [Description("Zoo name or Keras alias (see `transfer models`).")]
        public string Model { get; init; } = "";

        [CommandOption("--size <PIXELS>")]
        [Description("Input height and width (default: the model's native size).")]
        public int? Size { get; init; }

        [CommandOption("--all")]
        [Description("List every node, not only those with parameters.")]
        public bool All { get; init; }

        public override ValidationResult Validate() =>
            string.IsNullOrWhiteSpace(Model) ? ValidationResult.Error("--model is required, e.g. --model resnet50") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var model = ModelZoo.Create(settings.Model, new ModelOptions { ImageSize = settings.Size });
        var summary = model.Summary();
        if (settings.Json)
        {
            Json.Print(new
            {
                summary.Model, summary.InputShape, summary.Parameters, summary.TrainableParameters, summary.Macs, summary.Flops,
                NumFeatures = model.NumFeatures, FeatureNode = model.Graph.FeatureNode, ClassifierNode = model.Graph.ClassifierNode,
                Groups = model.GroupState().Select(g => new { g.Group, Parameters = g.Trainable + g.Frozen }),
                Layers = summary.Rows.Where(r => settings.All || r.Parameters > 0),
            });
            return 0;
        }
        var t = new Table().AddColumns("layer", "op", "output", "params", "MACs", "group").Border(TableBorder.Simple);
        foreach (var r in summary.Rows.Where(r => settings.All || r.Parameters > 0))
            t.AddRow(Markup.Escape(r.Name), r.Kind, Markup.Escape($"[{string.Join(",", r.OutputShape)}]"), r.Parameters.ToString("N0"), r.Macs.ToString("N0"), Markup.Escape(r.Group ?? ""));
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(summary.Model)}[/] at {Markup.Escape($"[{string.Join(",", summary.InputShape)}]")}: {summary.Parameters:N0} parameters, "
            + $"{summary.Macs / 1e9:F2} GMACs ({summary.Flops / 1e9:F2} GFLOPs), {model.NumFeatures} pooled features from '{Markup.Escape(model.Graph.FeatureNode ?? "?")}'.");
        AnsiConsole.MarkupLine("layer groups (input → head): " + string.Join(", ", model.GroupState().Select(g => $"{g.Group} ({(g.Trainable + g.Frozen) / 1e6:F2}M)")));
        return 0;
    }
}
