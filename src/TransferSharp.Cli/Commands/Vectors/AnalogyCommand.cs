using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors analogy`: A is to B as C is to ?</summary>
public sealed class AnalogyCommand : Command<AnalogyCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandArgument(0, "<A>")]
        [Description("A in \"A is to B as C is to ?\" (e.g. man).")]
        public string A { get; init; } = "";

        [CommandArgument(1, "<B>")]
        [Description("B (e.g. king).")]
        public string B { get; init; } = "";

        [CommandArgument(2, "<C>")]
        [Description("C (e.g. woman); the answer is near B − A + C.")]
        public string C { get; init; } = "";

        [CommandOption("-k|--top <N>")]
        [Description("Answers to show.")]
        [DefaultValue(5)]
        public int Top { get; init; } = 5;

        [CommandOption("--cosmul")]
        [Description("Rank by 3CosMul (Levy and Goldberg) instead of 3CosAdd.")]
        public bool CosMul { get; init; }

        [CommandOption("--restrict <N>")]
        [Description("Search only the first N words.")]
        public int? Restrict { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        string[] positive = [settings.B, settings.C], negative = [settings.A];
        var answers = settings.CosMul
            ? vectors.MostSimilarCosMul(positive, negative, settings.Top, settings.Restrict)
            : vectors.MostSimilar(positive, negative, settings.Top, settings.Restrict);
        if (settings.Json)
        {
            Json.Print(new { a = settings.A, b = settings.B, c = settings.C, method = settings.CosMul ? "3CosMul" : "3CosAdd", answers = answers.Select(r => new { word = r.Word, score = r.Score }) });
            return 0;
        }
        AnsiConsole.Write(VectorsLoader.ScoreTable($"{settings.A} : {settings.B} :: {settings.C} : ?  ({(settings.CosMul ? "3CosMul" : "3CosAdd")})", answers, "score"));
        return 0;
    }
}
