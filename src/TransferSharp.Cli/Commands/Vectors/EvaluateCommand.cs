using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text.Evaluation;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors evaluate`: analogy accuracy and word-pair correlation, as gensim reports them.</summary>
public sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandOption("--analogies <FILE>")]
        [Description("Questions in Google's format (': section' lines, then 'a b c d' lines), e.g. questions-words.txt.")]
        public string? Analogies { get; init; }

        [CommandOption("--pairs <FILE>")]
        [Description("Word pairs with human scores, 'word1<TAB>word2<TAB>score' (WordSim-353 style; '#' comments).")]
        public string? Pairs { get; init; }

        [CommandOption("--restrict <N>")]
        [Description("Only the first N words take part (gensim's restrict_vocab).")]
        [DefaultValue(300000)]
        public int Restrict { get; init; } = 300_000;

        [CommandOption("--case-sensitive")]
        [Description("Do not upper-case words before comparing (gensim's case_insensitive=False).")]
        public bool CaseSensitive { get; init; }

        [CommandOption("--dummy4unknown")]
        [Description("Count questions/pairs with unknown words (as wrong / similarity 0) instead of skipping them.")]
        public bool Dummy4Unknown { get; init; }

        [CommandOption("--delimiter <CHAR>")]
        [Description("Field separator of the pairs file (default tab).")]
        public string? Delimiter { get; init; }

        public override ValidationResult Validate() =>
            Analogies is null && Pairs is null ? ValidationResult.Error("give --analogies FILE and/or --pairs FILE") : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        AnalogyEvaluationResult? analogies = settings.Analogies is null ? null : vectors.EvaluateAnalogies(settings.Analogies,
            new AnalogyEvaluationOptions { RestrictVocab = settings.Restrict, CaseInsensitive = !settings.CaseSensitive, Dummy4Unknown = settings.Dummy4Unknown });
        WordPairEvaluationResult? pairs = settings.Pairs is null ? null : vectors.EvaluateWordPairs(settings.Pairs,
            new WordPairEvaluationOptions
            {
                RestrictVocab = settings.Restrict, CaseInsensitive = !settings.CaseSensitive, Dummy4Unknown = settings.Dummy4Unknown,
                Delimiter = settings.Delimiter is { Length: > 0 } d ? (d == "\\t" ? '\t' : d[0]) : '\t',
            });
        if (settings.Json)
        {
            Json.Print(new
            {
                analogies = analogies is null ? null : new
                {
                    accuracy = analogies.Accuracy, questions = analogies.Questions, outOfVocabulary = analogies.OutOfVocabulary,
                    outOfVocabularyPercent = analogies.OutOfVocabularyPercent,
                    sections = analogies.Sections.Append(analogies.Total).Select(s => new { name = s.Name, correct = s.Correct.Count, incorrect = s.Incorrect.Count, accuracy = s.Accuracy }),
                },
                pairs,
            });
            return 0;
        }
        if (analogies is not null)
        {
            var table = new Table().Title("analogies (3CosAdd, top-5 scan as gensim)").AddColumn("section").AddColumn(new TableColumn("correct").RightAligned())
                .AddColumn(new TableColumn("evaluated").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned());
            foreach (var s in analogies.Sections.Append(analogies.Total))
                table.AddRow(Markup.Escape(s.Name), s.Correct.Count.ToString(), (s.Correct.Count + s.Incorrect.Count).ToString(), $"{s.Accuracy:P1}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"questions with out-of-vocabulary words: {analogies.OutOfVocabulary} of {analogies.Questions} ({analogies.OutOfVocabularyPercent:F1}%){(settings.Dummy4Unknown ? ", counted wrong" : ", skipped")}");
        }
        if (pairs is not null)
        {
            AnsiConsole.MarkupLine($"word pairs: Pearson {pairs.Pearson:F4} (p = {pairs.PearsonPValue:G3}), Spearman {pairs.Spearman:F4} (p = {pairs.SpearmanPValue:G3}), "
                + $"{pairs.Pairs} pairs, {pairs.OutOfVocabulary} with unknown words ({pairs.OutOfVocabularyPercent:F1}%)");
        }
        return 0;
    }
}
