using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Runtime;
using TransferSharp.Vision;
using TransferSharp.Vision.Inference;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer predict`: top-k classes for images.</summary>
public sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<IMAGES>")]
        [Description("Image files (JPEG, PNG, BMP, GIF, WebP).")]
        public string[] Images { get; init; } = [];

        [CommandOption("-m|--model <MODEL>")]
        [Description("Zoo name or Keras alias (resnet50, ResNet50, …), or a model file saved by `transfer train` (.safetensors) or an .onnx file.")]
        public string Model { get; init; } = "";

        [CommandOption("-w|--weights <WEIGHTS>")]
        [Description("For zoo models: imagenet (the default tag), a tag name from `transfer models` (IMAGENET1K_V1, a1h_in1k, …), or a checkpoint file (.safetensors, .pth, .pt, .bin). Downloaded into the cache on first use.")]
        public string? Weights { get; init; }

        [CommandOption("-k|--top <K>")]
        [Description("How many classes to show per image.")]
        [DefaultValue(5)]
        public int Top { get; init; } = 5;

        [CommandOption("--batch-size <N>")]
        [Description("Images per forward pass.")]
        [DefaultValue(16)]
        public int BatchSize { get; init; } = 16;

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is required, e.g. --model resnet50");
            if (Images.Length == 0) return ValidationResult.Error("give at least one image file");
            if (Top < 1) return ValidationResult.Error("--top must be at least 1");
            if (BatchSize < 1) return ValidationResult.Error("--batch-size must be at least 1");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        using var model = ConsoleUi.WithDownloadProgress(p => VisionModel.Load(settings.Model, settings.Weights, progress: p, cancellation: cancellation));
        using var predictor = model.CreatePredictor(new PredictorOptions { Device = settings.Device, BatchSize = settings.BatchSize });
        var sw = Stopwatch.StartNew();
        var predictions = predictor.Predict(settings.Images, settings.Top, cancellation);
        var seconds = sw.Elapsed.TotalSeconds;
        if (settings.Json)
        {
            Json.Print(new { model = model.Description, preprocessing = model.Preprocessing.ToString(), predictions });
            return 0;
        }
        ConsoleUi.Err.MarkupLine($"[grey]{Markup.Escape(model.Description)}; {Markup.Escape(model.Preprocessing.ToString())}; {predictions.Count} image(s) in {seconds:F2} s[/]");
        foreach (var p in predictions)
        {
            var t = new Table().Title(Markup.Escape(p.Source)).AddColumn("class").AddColumn(new TableColumn("probability").RightAligned()).AddColumn("index");
            foreach (var c in p.Top) t.AddRow(Markup.Escape(c.Label), $"{c.Probability:P1}", c.Index.ToString());
            AnsiConsole.Write(t);
        }
        return 0;
    }
}
