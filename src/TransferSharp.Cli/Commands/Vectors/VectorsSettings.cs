using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text;

namespace TransferSharp.Cli.Commands.Vectors;

/// <summary>Options of every `transfer vectors` command: which file, and how to load it.</summary>
public class VectorsSettings : EncodingSettings
{
    [CommandOption("-v|--vectors <FILE>")]
    [Description("Word-vector file: word2vec binary (.bin) or text, GloVe text, fastText .vec, a fastText model (.bin/.ftz: also answers for unseen words), or a TransferSharp cache (.tswv). The format is detected from the content.")]
    public string Vectors { get; init; } = "";

    [CommandOption("--format <FORMAT>")]
    [Description("Override detection: auto, word2vec-binary, word2vec-text, glove, fasttext-vec, fasttext-bin, cache.")]
    [DefaultValue("auto")]
    public string Format { get; init; } = "auto";

    [CommandOption("--limit <N>")]
    [Description("Read only the first N words (most published vectors are sorted by frequency); reading stops there.")]
    public int? Limit { get; init; }

    [CommandOption("--float16")]
    [Description("Store vectors as 16-bit floats: half the memory, similarities change in the 3rd-4th decimal.")]
    public bool Float16 { get; init; }

    [CommandOption("--mmap")]
    [Description("word2vec binary and caches: serve vectors from the file through a read-only memory map instead of copying them.")]
    public bool MemoryMap { get; init; }

    [CommandOption("--cache [DIR]")]
    [Description("Text files: convert once into a binary cache (default $TRANSFERSHARP_HOME/vectors) and open that instantly on later runs.")]
    public FlagValue<string>? Cache { get; init; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Vectors)) return ValidationResult.Error("--vectors FILE is required");
        if (ParseFormat(Format) is null) return ValidationResult.Error($"unknown --format '{Format}' (auto, word2vec-binary, word2vec-text, glove, fasttext-vec, fasttext-bin, cache)");
        if (base.Validate() is { Successful: false } invalid) return invalid;
        if (Limit is < 0) return ValidationResult.Error("--limit must be 0 or more");
        return ValidationResult.Success();
    }

    public static VectorFileFormat? ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "auto" => VectorFileFormat.Auto,
        "word2vec-binary" or "w2v-binary" or "bin" => VectorFileFormat.Word2VecBinary,
        "word2vec-text" or "w2v-text" or "text" or "txt" => VectorFileFormat.Word2VecText,
        "glove" => VectorFileFormat.GloVe,
        "fasttext-vec" or "vec" => VectorFileFormat.FastTextVec,
        "fasttext-bin" or "fasttext" or "ftz" => VectorFileFormat.FastTextBinary,
        "cache" or "tswv" => VectorFileFormat.Cache,
        _ => null,
    };

    public static string FormatName(VectorFileFormat f) => f switch
    {
        VectorFileFormat.Word2VecBinary => "word2vec-binary",
        VectorFileFormat.Word2VecText => "word2vec-text",
        VectorFileFormat.GloVe => "glove",
        VectorFileFormat.FastTextVec => "fasttext-vec",
        VectorFileFormat.FastTextBinary => "fasttext-bin",
        VectorFileFormat.Cache => "cache",
        _ => "auto",
    };

    public WordVectorsLoadOptions LoadOptions(CancellationToken cancellation, IProgress<LoadProgress>? progress = null) => new()
    {
        Format = ParseFormat(Format) ?? VectorFileFormat.Auto,
        Limit = Limit,
        Precision = Float16 ? VectorPrecision.Float16 : VectorPrecision.Float32,
        MemoryMap = MemoryMap,
        CacheDirectory = Cache is { IsSet: true } c ? (string.IsNullOrEmpty(c.Value) ? WordVectorsLoadOptions.DefaultCacheDirectory : c.Value) : null,
        EncodingErrors = EncodingErrorMode,
        Threads = Threads,
        Progress = progress,
        Cancellation = cancellation,
    };
}

/// <summary>Loads vectors for a command, with a progress bar on stderr for large files.</summary>
public static class VectorsLoader
{
    private const long ProgressBarBytes = 32L << 20;

    public static WordVectors Load(VectorsSettings settings, CancellationToken cancellation) => Load(settings.Vectors, settings, cancellation);

    public static WordVectors Load(string path, VectorsSettings settings, CancellationToken cancellation)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        long size = new FileInfo(path).Length;
        if (size < ProgressBarBytes || Console.IsErrorRedirected)
            return WordVectors.Load(path, settings.LoadOptions(cancellation));
        WordVectors? result = null;
        WithProgressBars(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var progress = new ConsoleUi.SyncProgress<LoadProgress>(p =>
                {
                    if (!tasks.TryGetValue(p.Stage, out var task))
                    {
                        foreach (var t in tasks.Values) t.StopTask();
                        task = tasks[p.Stage] = ctx.AddTask($"{p.Stage} {Path.GetFileName(path)}", maxValue: Math.Max(1, p.BytesTotal));
                    }
                    task.MaxValue = Math.Max(1, p.BytesTotal);
                    task.Value = p.BytesDone;
                });
                result = WordVectors.Load(path, settings.LoadOptions(cancellation, progress));
            });
        return result!;
    }

    /// <summary>Runs work while Spectre draws progress bars on stderr (the work runs on this thread).</summary>
    public static void WithProgressBars(Action<ProgressContext> work) =>
        ConsoleUi.Err.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(work);

    /// <summary>The (#, word, score) table of neighbour and analogy answers.</summary>
    public static Table ScoreTable(string title, IReadOnlyList<WordScore> results, string scoreName)
    {
        var table = new Table().Title(Markup.Escape(title)).AddColumn(new TableColumn("#").RightAligned()).AddColumn("word").AddColumn(new TableColumn(scoreName).RightAligned());
        int rank = 1;
        foreach (var r in results) table.AddRow((rank++).ToString(), Markup.Escape(r.Word), r.Score.ToString("F4"));
        return table;
    }
}
