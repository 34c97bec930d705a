using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using TransferSharp.Onnx;
using TransferSharp.Text.Transformers;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>`transfer text embed`: sentence embeddings from a pretrained text encoder.</summary>
public sealed class EmbedCommand : Command<EmbedCommand.Settings>
{
    /// <summary>The encoder used when --model is not given: bundled with the CLI, so it works offline.</summary>
    public const string DefaultModel = "all-MiniLM-L6-v2";

    /// <summary>--engine value: the TorchSharp graph.</summary>
    public const string TorchEngineName = "torch";

    /// <summary>--engine value: the graph exported to ONNX in memory, run in ONNX Runtime.</summary>
    public const string OnnxRuntimeEngineName = "onnxruntime";

    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[TEXTS]")]
        [Description("Texts to embed (quote each one). Without texts and --file, lines are read from standard input.")]
        public string[] Texts { get; init; } = [];

        [CommandOption("-m|--model <MODEL>")]
        [Description("A text encoder by name (all-MiniLM-L6-v2, offline; bge-small-en-v1.5 and all-MiniLM-L6-v2.hub download once from the Hugging Face hub; see `transfer models --text`), a Hugging Face / sentence-transformers model folder, or an ONNX encoder with its vocab.txt beside it.")]
        [DefaultValue(DefaultModel)]
        public string Model { get; init; } = DefaultModel;

        [CommandOption("-f|--file <FILE>")]
        [Description("A file with one text per line (UTF-8; a byte that is not UTF-8 is an error naming its line).")]
        public string? File { get; init; }

        [CommandOption("-o|--out <FILE>")]
        [Description("Write the embeddings as JSON lines, one {\"text\", \"embedding\"} object per line in input order (written under a temporary name, then renamed); stdout gets a summary only.")]
        public string? Out { get; init; }

        [CommandOption("--batch-size <N>")]
        [Description("Texts per forward pass (texts are sorted by length first, so a batch pads little).")]
        [DefaultValue(TextEncoder.DefaultBatchSize)]
        public int BatchSize { get; init; } = TextEncoder.DefaultBatchSize;

        [CommandOption("--engine <ENGINE>")]
        [Description("What runs the encoder: torch runs the TorchSharp graph, as training does; onnxruntime exports the encoder's graph to ONNX in memory and runs it in ONNX Runtime (CPU only). The default is torch where LibTorch's MKL runs the kernels for this CPU's instruction set (Intel CPUs, or the command's MKL path on others: 1.14-1.18x the onnxruntime engine on a quiet AMD EPYC, docs/benchmarks.md text-encode) and onnxruntime where it does not (TRANSFERSHARP_MKL_INTEL_PATH=0 on AMD: onnxruntime 1.07-2.1x faster). Both give the same embeddings to float32 rounding.")]
        public string? Engine { get; init; }

        public override ValidationResult Validate()
        {
            if (BatchSize < 1) return ValidationResult.Error("--batch-size must be at least 1");
            if (Engine is not (null or TorchEngineName or "torchsharp" or OnnxRuntimeEngineName))
                return ValidationResult.Error($"--engine must be torch or onnxruntime, not '{Engine}'");
            if (File is not null && Texts.Length > 0) return ValidationResult.Error("give texts as arguments or --file, not both");
            return string.IsNullOrWhiteSpace(Model) ? ValidationResult.Error("--model is empty") : ValidationResult.Success();
        }
    }

    /// <summary>One text's embedding, as --json prints it and --out writes it.</summary>
    public sealed record EmbeddingRow(string Text, bool Truncated, float[] Embedding);

    /// <summary>What --out (with --json) reports.</summary>
    public sealed record OutSummary(string Out, string Model, string Engine, int Texts, int Dimension, int Truncated);

    private static readonly JsonSerializerOptions Lines = new(Json.Options) { WriteIndented = false };

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        Runtime.TorchRuntime.SetThreads(settings.Threads);
        var device = Runtime.TorchRuntime.ParseDevice(settings.Device);
        var texts = ReadTexts(settings);
        using var encoder = ConsoleUi.WithDownloadProgress(p => TextEncoder.Load(settings.Model, progress: p, cancellation: cancellation));
        encoder.Module.to(device);
        // ONNX Runtime on the CPU unless told otherwise; the TorchSharp graph on any other device.
        bool cpu = device.type == DeviceType.CPU;
        // By measurement (docs/benchmarks.md, text-encode): MKL's kernels for the CPU's instruction set beat ONNX Runtime's;
        // its generic path on a CPU that is not Intel's does not.
        bool mklFast = TransferSharp.Runtime.TorchRuntime.MklCodePath is TransferSharp.Runtime.MklCodePathChoice.Applied or TransferSharp.Runtime.MklCodePathChoice.NotApplicable;
        string engine = settings.Engine switch { null => cpu && !mklFast ? OnnxRuntimeEngineName : TorchEngineName, "torchsharp" => TorchEngineName, var e => e };
        if (engine == OnnxRuntimeEngineName && !cpu)
            throw new UsageException($"--engine onnxruntime runs on the CPU; with --device {settings.Device} use --engine torch");
        if (engine == OnnxRuntimeEngineName)
            encoder.UseEngine(OnnxRuntimeEngine.ForTextEncoder(encoder, new OnnxRuntimeOptions { Threads = settings.Threads }));
        var truncated = new SortedSet<int>();
        // Progress only when there is more than one batch to wait for.
        var progress = texts.Count > settings.BatchSize ? new WorkflowConsole.ProgressLine() : null;
        var vectors = encoder.Encode(texts, settings.BatchSize, progress, truncated, cancellation);
        if (truncated.Count > 0)
        {
            var which = string.Join(", ", truncated.Take(20).Select(i => (i + 1).ToString(CultureInfo.InvariantCulture))) + (truncated.Count > 20 ? ", …" : "");
            // Plain text: a warning is read by people and grepped by scripts, so it is not wrapped to the terminal's width.
            Console.Error.WriteLine($"warning: {truncated.Count} of {texts.Count} texts are longer than {encoder.Name}'s {encoder.Tokenizer.Settings.MaxLength} tokens and were truncated (as sentence-transformers truncates them): text {which}");
        }
        var rows = texts.Select((t, i) => new EmbeddingRow(t, truncated.Contains(i), vectors[i])).ToList();
        if (settings.Out is { } path)
        {
            IO.AtomicFile.Write(path, fs =>
            {
                using var writer = new StreamWriter(fs, new System.Text.UTF8Encoding(false), leaveOpen: true);
                foreach (var row in rows) writer.WriteLine(JsonSerializer.Serialize(new { text = row.Text, embedding = row.Embedding }, Lines));
            });
            if (settings.Json) Json.Print(new OutSummary(path, encoder.Name, engine, rows.Count, encoder.Dimension, truncated.Count));
            else Console.WriteLine($"{rows.Count} embeddings ({encoder.Dimension}-d, {encoder.Name}, {engine} engine) written to {path}");
            return 0;
        }
        if (settings.Json)
        {
            Json.Print(rows);
            return 0;
        }
        PrintHuman(encoder, engine, rows);
        return 0;
    }

    /// <summary>The texts from the arguments, --file or standard input; an empty text is refused by number (its embedding
    /// would be that of [CLS] [SEP] alone, which sentence-transformers returns without a word but which means nothing).</summary>
    private static List<string> ReadTexts(Settings settings)
    {
        List<string> texts;
        string source;
        if (settings.File is { } file)
        {
            texts = IO.StrictUtf8.ReadLines(file).ToList();
            source = file;
        }
        else if (settings.Texts.Length > 0)
        {
            texts = [.. settings.Texts];
            source = "";
        }
        else
        {
            texts = [];
            while (Console.In.ReadLine() is { } line) texts.Add(line);
            source = "standard input";
        }
        if (texts.Count == 0) throw new UsageException($"no texts to embed{(source.Length > 0 ? $": {source} is empty" : "")}; give texts as arguments, --file FILE or lines on standard input");
        int empty = texts.FindIndex(string.IsNullOrWhiteSpace);
        if (empty >= 0)
        {
            var what = "is empty: an empty text has no embedding worth having (only [CLS] and [SEP] would be encoded); remove it";
            if (settings.File is { } f) throw new InvalidFileException(f, $"line {empty + 1} {what}");
            throw new UsageException(source.Length > 0 ? $"line {empty + 1} of {source} {what}" : $"text {empty + 1} {what}");
        }
        return texts;
    }

    /// <summary>Short human output: what the vectors are; for 2–10 texts their cosine similarity matrix, else each text's
    /// norm and first values.</summary>
    private static void PrintHuman(TextEncoder encoder, string engine, List<EmbeddingRow> rows)
    {
        var pooling = encoder.Pooling == TextPooling.Cls ? "CLS pooling" : "mean pooling";
        ConsoleUi.Out.MarkupLine(Markup.Escape($"{encoder.Name}: {rows.Count} text{(rows.Count == 1 ? "" : "s")} → {encoder.Dimension}-d vectors ({pooling}{(encoder.Normalize ? ", normalised" : "")}; {engine} engine)"));
        if (rows.Count is >= 2 and <= 10)
        {
            var table = new Table().Border(TableBorder.Simple).AddColumn("cosine similarity");
            for (int j = 0; j < rows.Count; j++) table.AddColumn(new TableColumn((j + 1).ToString(CultureInfo.InvariantCulture)).RightAligned());
            for (int i = 0; i < rows.Count; i++)
            {
                var cells = new List<string> { Markup.Escape($"{i + 1} {Shorten(rows[i].Text)}") };
                for (int j = 0; j < rows.Count; j++) cells.Add(Cosine(rows[i].Embedding, rows[j].Embedding).ToString("F3", CultureInfo.InvariantCulture));
                table.AddRow(cells.ToArray());
            }
            ConsoleUi.Out.Write(table);
            ConsoleUi.Out.MarkupLine("[grey]--json prints the vectors; --out FILE writes them as JSON lines[/]");
            return;
        }
        var list = new Table().Border(TableBorder.Simple).AddColumn("#").AddColumn("text").AddColumn(new TableColumn("norm").RightAligned()).AddColumn("first values");
        for (int i = 0; i < rows.Count; i++)
        {
            var v = rows[i].Embedding;
            double norm = Math.Sqrt(v.Sum(x => (double)x * x));
            list.AddRow((i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(Shorten(rows[i].Text)), norm.ToString("F3", CultureInfo.InvariantCulture),
                string.Join(" ", v.Take(5).Select(x => x.ToString("+0.0000;-0.0000", CultureInfo.InvariantCulture))) + " …");
        }
        ConsoleUi.Out.Write(list);
        ConsoleUi.Out.MarkupLine("[grey]--json prints the vectors; --out FILE writes them as JSON lines[/]");
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < a.Length; k++)
        {
            dot += (double)a[k] * b[k];
            na += (double)a[k] * a[k];
            nb += (double)b[k] * b[k];
        }
        return dot / Math.Sqrt(Math.Max(na * nb, 1e-30));
    }

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "…";
}
