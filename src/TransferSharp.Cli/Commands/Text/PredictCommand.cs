using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text predict`: labels for texts.</summary>
public sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : TextModelSettings
    {
        [CommandArgument(0, "[TEXTS]")]
        [Description("Texts to classify (quote each one). Without texts and --input, lines are read from standard input.")]
        public string[] Texts { get; init; } = [];

        [CommandOption("-i|--input <FILE>")]
        [Description("A file with one text per line (UTF-8; a byte that is not UTF-8 is an error naming its line).")]
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
            var common = base.Validate();
            if (!common.Successful) return common;
            return Top < 1 ? ValidationResult.Error("--top must be at least 1") : ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        Runtime.TorchRuntime.SetThreads(settings.Threads);
        var texts = settings.Texts.ToList();
        bool lines = settings.Input is not null || texts.Count == 0;
        if (settings.Input is { } file) texts.AddRange(IO.StrictUtf8.ReadLines(file));
        else if (texts.Count == 0) texts.AddRange(ReadLines(Console.In));
        using var model = TextModelFile.Open(settings);
        var predictions = model.Predict(texts, settings.Top, settings.Threshold);
        if (settings.Json)
        {
            Json.Print(texts.Select((t, i) => new { text = t, labels = predictions[i].Select(p => new { label = p.Label, probability = p.Probability }) }));
            return 0;
        }
        if (lines)
        {
            // One line per text, as `fasttext predict-prob` prints them: label probability [label probability …]
            foreach (var p in predictions) Console.WriteLine(string.Join(' ', p.Select(x => $"{x.Label} {CppFloat(x.Probability)}")));
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

    /// <summary>A float as C++ streams print it by default (6 significant digits, like %g).</summary>
    internal static string CppFloat(float x) => x.ToString("G6", System.Globalization.CultureInfo.InvariantCulture).Replace("E", "e");

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "…";
}
