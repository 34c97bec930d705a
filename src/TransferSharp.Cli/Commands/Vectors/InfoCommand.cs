using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>`transfer vectors info`: what a vector file holds and what loading it found.</summary>
public sealed class InfoCommand : Command<VectorsSettings>
{
    public override int Execute(CommandContext context, VectorsSettings settings, CancellationToken cancellation)
    {
        using var vectors = VectorsLoader.Load(settings, cancellation);
        var info = vectors.LoadInfo;
        var ft = vectors.Subwords;
        var result = new
        {
            path = info.Path, format = VectorsSettings.FormatName(info.Format), bytes = new FileInfo(settings.Vectors).Length,
            words = vectors.Count, dimension = vectors.Dimension, declaredCount = info.DeclaredCount, duplicatesSkipped = info.DuplicatesSkipped,
            invalidUtf8Words = info.InvalidUtf8Words, wordsWithSpaces = info.WordsWithSpaces, blankLines = info.BlankLines, truncated = info.Truncated,
            precision = info.Precision.ToString(), memoryMapped = info.MemoryMapped, cache = info.CachePath, fromCache = info.FromCache,
            loadSeconds = info.Elapsed.TotalSeconds, firstWords = vectors.Words.Take(10).ToList(),
            fastText = ft is null ? null : new
            {
                version = ft.Version, model = ft.Args.ModelName, loss = ft.Args.LossName, quantized = ft.IsQuantized, labels = ft.Labels.Count,
                minn = ft.Args.MinN, maxn = ft.Args.MaxN, bucket = ft.Args.Bucket, wordNgrams = ft.Args.WordNgrams, epoch = ft.Args.Epoch,
                minCount = ft.Args.MinCount, ws = ft.Args.WindowSize, neg = ft.Args.Negatives, tokens = ft.TokenCount,
            },
        };
        if (settings.Json)
        {
            Json.Print(result);
            return 0;
        }
        var grid = new Grid().AddColumn().AddColumn();
        void Row(string k, object? v) => grid.AddRow(new Markup($"[grey]{k}[/]"), new Spectre.Console.Text(v?.ToString() ?? "—"));
        Row("file", result.path);
        Row("format", result.format);
        Row("size", $"{result.bytes / 1e6:F1} MB");
        Row("words × dimension", $"{result.words:N0} × {result.dimension}");
        Row("header count", result.declaredCount);
        Row("duplicates skipped", result.duplicatesSkipped);
        if (result.invalidUtf8Words > 0) Row("words with invalid UTF-8 (replaced)", result.invalidUtf8Words);
        if (result.wordsWithSpaces > 0) Row("words containing spaces", result.wordsWithSpaces);
        if (result.blankLines > 0) Row("blank lines skipped", result.blankLines);
        Row("stopped at --limit", result.truncated);
        Row("storage", $"{result.precision}{(result.memoryMapped ? ", memory-mapped" : "")}");
        if (result.cache is not null) Row("cache", $"{result.cache}{(result.fromCache ? " (used)" : " (written)")}");
        Row("load time", $"{result.loadSeconds:F2} s");
        Row("first words", string.Join(" ", result.firstWords));
        if (result.fastText is { } f)
        {
            Row("fastText model", $"version {f.version}, {f.model}, loss {f.loss}{(f.quantized ? ", quantized" : "")}{(f.labels > 0 ? $", {f.labels} labels" : "")}");
            Row("fastText n-grams", $"char {f.minn}-{f.maxn}, word {f.wordNgrams}, {f.bucket:N0} buckets");
            Row("fastText training", $"epoch {f.epoch}, minCount {f.minCount}, ws {f.ws}, neg {f.neg}, {f.tokens:N0} tokens");
        }
        AnsiConsole.Write(grid);
        return 0;
    }
}
