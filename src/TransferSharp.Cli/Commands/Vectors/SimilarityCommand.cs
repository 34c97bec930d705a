using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors similarity`: cosine similarity of word pairs.</summary>
public sealed class SimilarityCommand : Command<SimilarityCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandArgument(0, "<WORDS>")]
        [Description("Pairs of words: WORD1 WORD2 [WORD1 WORD2 …].")]
        public string[] Words { get; init; } = [];

        public override ValidationResult Validate() =>
            Words.Length < 2 || Words.Length % 2 != 0 ? ValidationResult.Error("give pairs of words: WORD1 WORD2 [WORD1 WORD2 …]") : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        var pairs = Enumerable.Range(0, settings.Words.Length / 2)
            .Select(i => (A: settings.Words[2 * i], B: settings.Words[2 * i + 1]))
            .Select(p => (p.A, p.B, Cosine: vectors.Similarity(p.A, p.B))).ToList();
        if (settings.Json)
        {
            Json.Print(pairs.Select(p => new { word1 = p.A, word2 = p.B, cosine = p.Cosine }));
            return 0;
        }
        var table = new Table().AddColumn("word 1").AddColumn("word 2").AddColumn(new TableColumn("cosine").RightAligned());
        foreach (var p in pairs) table.AddRow(Markup.Escape(p.A), Markup.Escape(p.B), p.Cosine.ToString("F4"));
        AnsiConsole.Write(table);
        return 0;
    }
}
