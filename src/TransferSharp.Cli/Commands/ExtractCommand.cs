using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Data;
using TransferSharp.Runtime;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer extract`: pooled features of a model for every image of a data set, into a file.</summary>
public sealed class ExtractCommand : Command<ExtractCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <MODEL>")]
        [Description("Zoo name or a trained model file (.safetensors).")]
        public string Model { get; init; } = "";

        [CommandOption("-w|--weights <WEIGHTS>")]
        [Description("Weights of a zoo model: imagenet (default), a tag, a weights file, or none (random).")]
        [DefaultValue("imagenet")]
        public string Weights { get; init; } = "imagenet";

        [CommandOption("-d|--data <PATH>")]
        [Description("Images: a folder with one subfolder per class, or a .csv/.tsv manifest (path,label).")]
        public string Data { get; init; } = "";

        [CommandOption("-o|--out <FILE>")]
        [Description(".parquet (path, label, label_index, f0…), .npy (float32 [N,F] + NAME.index.csv) or .csv. An interrupted run resumes when rerun.")]
        public string Out { get; init; } = "";

        [CommandOption("-b|--batch-size <N>")]
        [DefaultValue(32)]
        [Description("Images per forward pass.")]
        public int BatchSize { get; init; } = 32;

        [CommandOption("--pool <KIND>")]
        [DefaultValue("avg")]
        [Description("Global pooling of the last feature map: avg or max.")]
        public string Pool { get; init; } = "avg";

        [CommandOption("--image-size <PIXELS>")]
        [Description("Input crop size (default: the weights' size).")]
        public int? ImageSize { get; init; }

        [CommandOption("--workers <N>")]
        [DefaultValue(0)]
        [Description("Image decoding threads (default: one per core).")]
        public int Workers { get; init; }

        [CommandOption("--on-bad-image <POLICY>")]
        [DefaultValue("skip")]
        [Description("skip (default) or fail.")]
        public string OnBadImage { get; init; } = "skip";

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is required");
            if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data is required");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required (.parquet, .npy or .csv)");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        using var cts = WorkflowConsole.CancelOnCtrlC(cancellation);
        FeatureFiles.FormatOf(settings.Out); // an unknown extension fails before any work
        var pool = settings.Pool.ToLowerInvariant() switch
        {
            "avg" or "mean" => PoolKind.Avg,
            "max" => PoolKind.Max,
            _ => throw new ArgumentException($"--pool '{settings.Pool}': use avg or max"),
        };
        var data = ImageDataset.Open(settings.Data);
        using var source = SourceModel.Open(settings.Model, SourceModel.IsRandom(settings.Weights) || File.Exists(settings.Model) ? null : settings.Weights, settings.ImageSize);
        var bad = new BadImageLog();
        var options = new ExtractOptions { Pool = pool, Device = settings.Device, Loader = WorkflowConsole.Loader(settings.BatchSize, settings.Workers, settings.OnBadImage) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!settings.Json) WorkflowConsole.Err.MarkupLine($"extracting {source.Model.NumFeatures}-d features of [bold]{Markup.Escape(source.Description)}[/] for {data.Count} images");
        var set = FeatureExtractor.ExtractToFile(source, data, settings.Out, options, bad, new WorkflowConsole.ProgressLine(), cts.Token);
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
        WorkflowConsole.ReportBadImages(bad, false);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(settings.Out)}[/]: {set.Count} × {set.Dimension} features, {set.ClassNames.Count} classes, {seconds:F1}s");
        return 0;
    }
}
