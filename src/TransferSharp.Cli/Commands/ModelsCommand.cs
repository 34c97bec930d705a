using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer models`: the zoo and the text encoders.</summary>
public sealed class ModelsCommand : Command<ModelsCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("--text")]
        [Description("Only the text encoders (for `transfer text embed --model NAME`); with --json, their rows instead of the image models'.")]
        public bool Text { get; init; }
    }

    public sealed record TextEncoderRow(string Name, string Tag, bool IsDefault, string Source, string? Repository, string? Description, string? License, string? Url);

    public sealed record TagRow(string Tag, bool IsDefault, double? Top1, int NumClasses, string Preprocessing, string? Url);

    public sealed record ModelRow(string Name, string Family, string Reference, IReadOnlyList<string> Aliases, long Parameters,
        int InputSize, int NumFeatures, IReadOnlyList<TagRow> Weights);

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        if (settings.Text) return TextEncoders(settings.Json);
        var rows = ModelZoo.Entries.Select(e =>
        {
            var def = WeightRegistry.Default(e.Name);
            // Counted as the default checkpoint holds it: DINOv2's has no classifier.
            var g = e.Build(new ModelOptions { NumClasses = def?.NumClasses ?? new ModelOptions().NumClasses });
            var tags = WeightRegistry.For(e.Name).Select(t => new TagRow(t.Tag, t == def, t.Top1, t.NumClasses, t.Preprocessing.ToString(), t.Url)).ToArray();
            return new ModelRow(e.Name, e.Family, $"{e.Reference} {e.ReferenceModel}", e.Aliases, ParameterCount(g), e.NativeSize, g.NumFeatures, tags);
        }).ToList();
        if (settings.Json)
        {
            Json.Print(rows);
            return 0;
        }
        var t = new Table().AddColumns("model", "aliases", "params", "input", "features", "weights (top-1 %, * = default)").Border(TableBorder.Simple);
        foreach (var r in rows)
        {
            var tags = string.Join("\n", r.Weights.Select(w => $"{(w.IsDefault ? "*" : " ")}{w.Tag}" + (w.Top1 is double a ? $" {a:F1}" : "") + (w.NumClasses != 1000 ? $" ({w.NumClasses} classes)" : "")));
            t.AddRow(Markup.Escape(r.Name), Markup.Escape(string.Join(", ", r.Aliases)), $"{r.Parameters / 1e6:F1}M", $"{r.InputSize}²", r.NumFeatures.ToString(),
                Markup.Escape(tags.Length == 0 ? "(none registered)" : tags));
        }
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine("[grey]use: transfer predict --model NAME [[--weights TAG|FILE]] IMAGE...; transfer summary --model NAME[/]");
        AnsiConsole.WriteLine();
        return TextEncoders(json: false);
    }

    /// <summary>The registry's text encoders: each model with its tags (the default first), what it is and where it comes from.</summary>
    private static int TextEncoders(bool json)
    {
        var rows = WeightRegistry.TextEncoders.GroupBy(t => t.Architecture, StringComparer.OrdinalIgnoreCase)
            .SelectMany(g => g.Select((t, i) => new TextEncoderRow(t.Architecture, t.Tag, i == 0, t.Source.ToString(), t.SourceArchitecture, t.Recipe, t.License,
                t.Files.FirstOrDefault(f => f.Path == "model.safetensors")?.Url ?? t.Url))).ToList();
        if (json)
        {
            Json.Print(rows);
            return 0;
        }
        var table = new Table().AddColumns("text encoder", "tags (* = default)", "what it is").Border(TableBorder.Simple);
        foreach (var g in rows.GroupBy(r => r.Name))
            table.AddRow(Markup.Escape(g.Key + (g.First().Repository is { } repo ? $"\n{repo}" : "")),
                Markup.Escape(string.Join("\n", g.Select(r => $"{(r.IsDefault ? "*" : " ")}{r.Tag} ({(r.Source == nameof(WeightSource.Local) ? "offline" : "download")})"))),
                Markup.Escape(g.First(r => r.IsDefault).Description ?? ""));
        ConsoleUi.Out.Write(table);
        ConsoleUi.Out.MarkupLine("[grey]use: transfer text embed --model NAME TEXT...; NAME.TAG picks a tag, a Hugging Face folder or an .onnx file works too[/]");
        return 0;
    }

    /// <summary>Parameters from the graph's ops, without allocating the model: what each op declares it holds (buffers,
    /// such as BatchNorm's running statistics, are not parameters).</summary>
    internal static long ParameterCount(ModelGraph g) =>
        g.Nodes.SelectMany(n => n.Op.ParameterShapes).Where(p => !p.IsBuffer).Sum(p => p.Shape.Aggregate(1L, (a, d) => a * d));
}
