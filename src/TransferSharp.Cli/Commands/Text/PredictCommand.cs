using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text predict`: labels for texts.</summary>
public sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <MODEL>")]
        [Description("A classifier saved by `transfer text train` (.safetensors) or a fastText classifier (.bin/.ftz, answered exactly as `fasttext predict-prob`).")]
        public string Model { get; init; } = "";

        [CommandArgument(0, "[TEXTS]")]
        [Description("Texts to classify (quote each one); or use --input.")]
        public string[] Texts { get; init; } = [];

        [CommandOption("-i|--input <FILE>")]
        [Description("One text per line; '-' reads standard input.")]
        public string? Input { get; init; }

        [CommandOption("-k|--top <K>")]
        [DefaultValue(1)]
        [Description("Labels per text.")]
        public int Top { get; init; } = 1;

        [CommandOption("--threshold <P>")]
        [DefaultValue(0f)]
        [Description("Leave out labels less probable than this.")]
        public float Threshold { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is required");
            if (Texts.Length == 0 && Input is null) return ValidationResult.Error("give texts as arguments or --input FILE (or - for stdin)");
            return Top < 1 ? ValidationResult.Error("--top must be at least 1") : ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        Runtime.TorchRuntime.SetThreads(settings.Threads);
        var texts = settings.Texts.ToList();
        if (settings.Input is "-") texts.AddRange(ReadLines(Console.In));
        else if (settings.Input is { } file) texts.AddRange(File.ReadLines(file));
        using var model = TextModelFile.Open(settings.Model);
        var predictions = model.Predict(texts, settings.Top, settings.Threshold);
        if (settings.Json)
        {
            Json.Print(texts.Select((t, i) => new { text = t, labels = predictions[i].Select(p => new { label = p.Label, probability = p.Probability }) }));
            return 0;
        }
        if (settings.Input is not null)
        {
            // One line per text, like fasttext predict-prob: label probability [label probability …]
            foreach (var p in predictions) Console.WriteLine(string.Join(' ', p.Select(x => $"{x.Label} {x.Probability:G6}")));
            return 0;
        }
        var table = new Table().AddColumn("text").AddColumn("label").AddColumn(new TableColumn("probability").RightAligned());
        for (int i = 0; i < texts.Count; i++)
            foreach (var (label, probability) in predictions[i])
                table.AddRow(Markup.Escape(Shorten(texts[i])), Markup.Escape(label), probability.ToString("P1"));
        AnsiConsole.Write(table);
        return 0;
    }

    private static IEnumerable<string> ReadLines(TextReader reader)
    {
        while (reader.ReadLine() is { } line) yield return line;
    }

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "…";
}
