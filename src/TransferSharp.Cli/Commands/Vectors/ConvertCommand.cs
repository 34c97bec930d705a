using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors convert`: between word2vec binary/text, GloVe, fastText .vec and the cache.</summary>
public sealed class ConvertCommand : Command<ConvertCommand.Settings>
{
    public sealed class Settings : VectorsSettings
    {
        [CommandOption("-o|--out <FILE>")]
        [Description("Output file (written under a temporary name, renamed when complete).")]
        public string Out { get; init; } = "";

        [CommandOption("--to <FORMAT>")]
        [Description("word2vec-binary, word2vec-text, glove, fasttext-vec or cache; default from the output's extension (.bin, .txt, .vec, .tswv).")]
        public string? To { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out FILE is required");
            if (Target(this) is null) return ValidationResult.Error("cannot tell the output format: give --to word2vec-binary|word2vec-text|glove|fasttext-vec|cache");
            if (Target(this) is VectorFileFormat.FastTextBinary or VectorFileFormat.Auto) return ValidationResult.Error("fastText models (.bin/.ftz) can be read, not written");
            return base.Validate();
        }
    }

    public static VectorFileFormat? Target(Settings s) => s.To is { } to ? VectorsSettings.ParseFormat(to) : Path.GetExtension(s.Out).ToLowerInvariant() switch
    {
        ".bin" => VectorFileFormat.Word2VecBinary,
        ".txt" => VectorFileFormat.Word2VecText,
        ".vec" => VectorFileFormat.FastTextVec,
        ".tswv" => VectorFileFormat.Cache,
        _ => null,
    };

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        var target = Target(settings)!.Value;
        var clock = Stopwatch.StartNew();
        vectors.Save(settings.Out, target, cancellation);
        var result = new
        {
            input = settings.Vectors, inputFormat = VectorsSettings.FormatName(vectors.LoadInfo.Format), output = settings.Out,
            outputFormat = VectorsSettings.FormatName(target), words = vectors.Count, dimension = vectors.Dimension,
            duplicatesSkipped = vectors.LoadInfo.DuplicatesSkipped, bytes = new FileInfo(settings.Out).Length, seconds = clock.Elapsed.TotalSeconds,
        };
        if (settings.Json) Json.Print(result);
        else AnsiConsole.MarkupLine(Markup.Escape($"{result.words} × {result.dimension} vectors: {result.input} ({result.inputFormat}) → {result.output} ({result.outputFormat}, {result.bytes / 1e6:F1} MB) in {result.seconds:F2} s"));
        return 0;
    }
}
