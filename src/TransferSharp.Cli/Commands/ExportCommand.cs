using System.ComponentModel;
using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Onnx;
using TransferSharp.Runtime;
using TransferSharp.Vision;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer export`: a model (zoo with weights, or a model file) as an ONNX file.</summary>
public sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <MODEL>")]
        [Description("Zoo name or Keras alias (resnet50, resnet18_cntk, …), or a model file (.onnx, or a model saved by `transfer train`).")]
        public string Model { get; init; } = "";

        [CommandOption("-o|--out <FILE>")]
        [Description("The ONNX file to write (written to a temporary name, renamed when complete).")]
        public string Out { get; init; } = "";

        [CommandOption("--opset <N>")]
        [Description("ONNX opset to write, 13–21.")]
        [DefaultValue(OnnxExporter.DefaultOpset)]
        public int Opset { get; init; } = OnnxExporter.DefaultOpset;

        [CommandOption("-w|--weights <WEIGHTS>")]
        [Description("For zoo models: imagenet (the default tag), a tag name, a checkpoint file, or none for random weights.")]
        public string? Weights { get; init; }

        [CommandOption("--no-features")]
        [Description("Do not add the pooled-features output (\"features\") beside the model output.")]
        public bool NoFeatures { get; init; }

        [CommandOption("--check")]
        [Description("Run the exported file in ONNX Runtime on a random batch and compare with TorchSharp.")]
        public bool Check { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is required, e.g. --model resnet50");
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required, e.g. --out model.onnx");
            if (Opset < OnnxExporter.MinOpset || Opset > OnnxExporter.MaxOpset)
                return ValidationResult.Error($"--opset must be between {OnnxExporter.MinOpset} and {OnnxExporter.MaxOpset}");
            return ValidationResult.Success();
        }
    }

    public sealed record ExportResult(string Model, string File, long Bytes, int Opset, string Input, string Output, bool Features,
        string Preprocessing, double Seconds, double? MaxAbsDifference);

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        using var model = ConsoleUi.WithDownloadProgress(p => VisionModel.Load(settings.Model, settings.Weights, progress: p, cancellation: cancellation));
        cancellation.ThrowIfCancellationRequested();
        var sw = Stopwatch.StartNew();
        var options = new OnnxExportOptions
        {
            Opset = settings.Opset,
            IncludeFeatures = !settings.NoFeatures,
            Preprocessing = model.Preprocessing,
            Labels = model.Labels,
        };
        OnnxExporter.Export(model.Module, settings.Out, options);
        var seconds = sw.Elapsed.TotalSeconds;
        double? diff = settings.Check ? Check(model, settings.Out) : null;
        var file = Path.GetFullPath(settings.Out);
        var result = new ExportResult(model.Description, file, new FileInfo(file).Length, settings.Opset, options.InputName,
            OnnxExporter.MainOutputName(model.Module.Graph, options), options.IncludeFeatures && model.Module.Graph.FeatureNode is not null,
            model.Preprocessing.ToString(), seconds, diff);
        if (settings.Json)
        {
            Json.Print(result);
            return 0;
        }
        ConsoleUi.Err.MarkupLine($"[grey]{Markup.Escape(model.Description)}; {Markup.Escape(result.Preprocessing)}[/]");
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(file)}[/] ({result.Bytes / 1e6:F1} MB, opset {result.Opset}, input '{result.Input}' [[batch, {model.Module.Graph.InChannels}, {model.Module.Graph.InputShape[2]}, {model.Module.Graph.InputShape[3]}]], output '{result.Output}'{(result.Features ? ", 'features'" : "")}) in {seconds:F1} s");
        if (diff is double d) AnsiConsole.MarkupLine($"ONNX Runtime check: max |ONNX Runtime − TorchSharp| = {d:G3}");
        return 0;
    }

    private static double Check(VisionModel model, string file)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var shape = model.Module.Graph.InputShape.ToArray();
        shape[0] = 2;
        var x = TorchSharp.torch.rand(shape);
        using var engine = new OnnxRuntimeEngine(file);
        model.Module.eval();
        TorchSharp.torch.Tensor ours;
        using (TorchSharp.torch.no_grad()) ours = model.Module.forward(x);
        return (engine.Forward(x) - ours).abs().max().item<float>();
    }
}
