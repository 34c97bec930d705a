using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors neighbors`: the nearest words by cosine similarity.</summary>
public sealed class NeighborsCommand : Command<NeighborsCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandArgument(0, "<WORDS>")]
        [Description("Words to look up (several at once are answered with one matrix product).")]
        public string[] Words { get; init; } = [];

        [CommandOption("-k|--top <N>")]
        [Description("Neighbours per word.")]
        [DefaultValue(10)]
        public int Top { get; init; } = 10;

        [CommandOption("--restrict <N>")]
        [Description("Search only the first N words of the vocabulary (gensim's restrict_vocab).")]
        public int? Restrict { get; init; }

        public override ValidationResult Validate() =>
            Words.Length == 0 ? ValidationResult.Error("give at least one word") : Top < 1 ? ValidationResult.Error("--top must be at least 1") : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        var missing = settings.Words.Where(w => !vectors.Contains(w) && vectors.Subwords is null).ToList();
        if (missing.Count > 0) throw new WordNotFoundException(missing[0], settings.Vectors);
        var results = settings.Words.Length == 1
            ? [vectors.MostSimilar(settings.Words[0], settings.Top, settings.Restrict)]
            : vectors.NearestNeighbors(settings.Words, settings.Top, settings.Restrict);
        if (settings.Json)
        {
            Json.Print(settings.Words.Select((w, i) => new { word = w, inVocabulary = vectors.Contains(w), neighbors = results[i].Select(r => new { word = r.Word, cosine = r.Score }) }));
            return 0;
        }
        for (int i = 0; i < settings.Words.Length; i++)
        {
            var title = settings.Words[i] + (vectors.Contains(settings.Words[i]) ? "" : " (not in the vocabulary: fastText subword vector)");
            AnsiConsole.Write(VectorsLoader.ScoreTable(title, results[i], "cosine"));
        }
        return 0;
    }
}
