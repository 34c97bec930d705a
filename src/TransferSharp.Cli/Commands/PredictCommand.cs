using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Onnx;
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

        [CommandOption("--engine <ENGINE>")]
        [Description("torchsharp (default) or onnxruntime: run the model in ONNX Runtime (an .onnx file as it is; any other model exported to ONNX first).")]
        [DefaultValue("torchsharp")]
        public string Engine { get; init; } = "torchsharp";

        public override ValidationResult Validate()
        {
            if (Engine is not ("torchsharp" or "onnxruntime")) return ValidationResult.Error("--engine must be torchsharp or onnxruntime");
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
        IReadOnlyList<Prediction> predictions;
        string description, preprocessing;
        var sw = Stopwatch.StartNew();
        if (settings.Engine == "onnxruntime")
        {
            var ortOptions = new OnnxRuntimeOptions { Threads = settings.Threads };
            bool onnxFile = settings.Model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) && File.Exists(settings.Model);
            using var model = onnxFile ? null : ConsoleUi.WithDownloadProgress(p => VisionModel.Load(settings.Model, settings.Weights, progress: p, cancellation: cancellation));
            using var ort = model is null ? OnnxRuntimePredictor.FromFile(settings.Model, ortOptions, settings.BatchSize)
                : OnnxRuntimePredictor.FromModel(model, ortOptions, settings.BatchSize);
            sw.Restart();
            predictions = ort.Predict(settings.Images, settings.Top, cancellation);
            description = (model?.Description ?? Path.GetFileName(settings.Model)) + " in ONNX Runtime";
            preprocessing = ort.Preprocessing.ToString();
        }
        else
        {
            using var model = ConsoleUi.WithDownloadProgress(p => VisionModel.Load(settings.Model, settings.Weights, progress: p, cancellation: cancellation));
            using var predictor = model.CreatePredictor(new PredictorOptions { Device = settings.Device, BatchSize = settings.BatchSize });
            sw.Restart();
            predictions = predictor.Predict(settings.Images, settings.Top, cancellation);
            description = model.Description;
            preprocessing = model.Preprocessing.ToString();
        }
        var seconds = sw.Elapsed.TotalSeconds;
        if (settings.Json)
        {
            Json.Print(new { model = description, preprocessing, predictions });
            return 0;
        }
        ConsoleUi.Err.MarkupLine($"[grey]{Markup.Escape(description)}; {Markup.Escape(preprocessing)}; {predictions.Count} image(s) in {seconds:F2} s[/]");
        foreach (var p in predictions)
        {
            var t = new Table().Title(Markup.Escape(p.Source)).AddColumn("class").AddColumn(new TableColumn("probability").RightAligned()).AddColumn("index");
            foreach (var c in p.Top) t.AddRow(Markup.Escape(c.Label), $"{c.Probability:P1}", c.Index.ToString());
            AnsiConsole.Write(t);
        }
        return 0;
    }
}
