using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer extract`: pooled features of a model for every image of a data set, into a file.</summary>
public sealed class ExtractCommand : Command<ExtractCommand.Settings>
{
    public sealed class Settings : WeightsSettings
    {
        [CommandOption("-o|--out <FILE>")]
        [Description(".parquet (path, label, label_index, f0…), .npy (float32 [[N,F]] + NAME.index.csv) or .csv. An interrupted run resumes when rerun.")]
        public string Out { get; init; } = "";

        [CommandOption("-b|--batch-size <N>")]
        [DefaultValue(32)]
        [Description("Images per forward pass.")]
        public int BatchSize { get; init; } = 32;

        [CommandOption("--pool <KIND>")]
        [DefaultValue("avg")]
        [Description("Global pooling of the last feature map: avg or max.")]
        public string Pool { get; init; } = "avg";

        public override ValidationResult Validate()
        {
            if (RequireModelAndData() is { Successful: false } missing) return missing;
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required (.parquet, .npy or .csv)");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        FeatureFiles.FormatOf(settings.Out); // an unknown extension fails before any work
        var pool = settings.Pool.ToLowerInvariant() switch
        {
            "avg" or "mean" => PoolKind.Avg,
            "max" => PoolKind.Max,
            _ => throw new UsageException($"--pool '{settings.Pool}': use avg or max"),
        };
        var data = ImageDataset.Open(settings.Data);
        using var source = settings.OpenSource(data);
        var bad = new BadImageLog();
        var options = new ExtractOptions { Pool = pool, Device = settings.Device, Loader = WorkflowConsole.Loader(settings.BatchSize, settings.Workers, settings.OnBadImage) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!settings.Json) ConsoleUi.Err.MarkupLine($"extracting {source.Module.NumFeatures}-d features of [bold]{Markup.Escape(source.Description)}[/] for {data.Count} images");
        var set = FeatureExtractor.ExtractToFile(source, data, settings.Out, options, bad, new WorkflowConsole.ProgressLine(), cancellation);
        double seconds = clock.Elapsed.TotalSeconds;
        if (settings.Json)
        {
            Json.Print(new
            {
                Out = settings.Out, Index = FeatureFiles.FormatOf(settings.Out) == FeatureFileFormat.Npy ? FeatureFiles.NpyIndexPath(settings.Out) : null,
                Model = source.Description, Samples = set.Count, Features = set.Dimension, Classes = set.ClassNames, Seconds = seconds,
                BadImages = WorkflowConsole.BadImagesJson(bad),
            });
            return 0;
        }
        WorkflowConsole.ReportBadImages(bad);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(settings.Out)}[/]: {set.Count} × {set.Dimension} features, {set.ClassNames.Count} classes, {seconds:F1}s");
        return 0;
    }
}
