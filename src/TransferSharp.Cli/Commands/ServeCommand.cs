using System.ComponentModel;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Runtime;
using TransferSharp.Serving;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer serve`: a model behind HTTP on Kestrel, with dynamic batching, limits, metrics and a page.</summary>
public sealed class ServeCommand : AsyncCommand<ServeCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandOption("-m|--model <MODEL>")]
        [Description("Zoo name or Keras alias (resnet50, …), a model file saved by `transfer train` (.safetensors) or an .onnx file.")]
        public string Model { get; init; } = "";

        [CommandOption("-w|--weights <WEIGHTS>")]
        [Description("For zoo models: imagenet (the default tag), a tag name from `transfer models`, or a checkpoint file.")]
        public string? Weights { get; init; }

        [CommandOption("--engine <ENGINE>")]
        [Description("torchsharp (default) or onnxruntime (an .onnx file as it is; any other model exported to ONNX in memory).")]
        [DefaultValue("torchsharp")]
        public string Engine { get; init; } = "torchsharp";

        [CommandOption("--urls <URLS>")]
        [Description("Where to listen, ';'-separated (http://0.0.0.0:8080 to accept other machines; port 0 picks a free one).")]
        [DefaultValue("http://127.0.0.1:8080")]
        public string Urls { get; init; } = "http://127.0.0.1:8080";

        [CommandOption("--max-batch <N>")]
        [Description("Most images in one forward pass: concurrent requests are batched together.")]
        [DefaultValue(16)]
        public int MaxBatch { get; init; } = 16;

        [CommandOption("--max-delay-ms <MS>")]
        [Description("How long the first image of a batch waits for others (milliseconds). Requests already received and still decoding are waited for a little longer (at most half a forward pass) so that concurrent clients stay in whole batches; 0 never waits.")]
        [DefaultValue(5.0)]
        public double MaxDelayMs { get; init; } = 5;

        [CommandOption("--workers <N>")]
        [Description("Forward passes run at once, each on its share of the threads (0 chooses: 2 for TorchSharp on 2+ cores, measured faster under load; 1 for onnxruntime).")]
        [DefaultValue(0)]
        public int Workers { get; init; }

        [CommandOption("--max-queue <N>")]
        [Description("Most images waiting; beyond it requests get 429 with Retry-After.")]
        [DefaultValue(256)]
        public int MaxQueue { get; init; } = 256;

        [CommandOption("--max-upload-mb <MB>")]
        [Description("Largest request body in MB; larger gets 413.")]
        [DefaultValue(20.0)]
        public double MaxUploadMb { get; init; } = 20;

        [CommandOption("--timeout-s <S>")]
        [Description("How long a request may wait for its answer before 503 (seconds).")]
        [DefaultValue(30.0)]
        public double TimeoutSeconds { get; init; } = 30;

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Model)) return ValidationResult.Error("--model is required, e.g. --model transfer-demo/fashion.safetensors");
            if (Engine is not ("torchsharp" or "torch" or "onnxruntime")) return ValidationResult.Error("--engine must be torchsharp or onnxruntime");
            if (MaxBatch < 1) return ValidationResult.Error("--max-batch must be at least 1");
            if (MaxDelayMs < 0) return ValidationResult.Error("--max-delay-ms must not be negative");
            if (MaxQueue < 1) return ValidationResult.Error("--max-queue must be at least 1");
            if (Workers < 0) return ValidationResult.Error("--workers must not be negative (0 chooses)");
            if (MaxUploadMb <= 0) return ValidationResult.Error("--max-upload-mb must be positive");
            if (TimeoutSeconds <= 0) return ValidationResult.Error("--timeout-s must be positive");
            var urls = Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (urls.Length == 0 || urls.Any(u => !Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme != "http"))
                return ValidationResult.Error($"--urls must be http:// URLs separated by ';', got '{Urls}'");
            return ValidationResult.Success();
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        // A server runs until stopped, so a mistyped flag must not be silently ignored.
        var unknown = context.Remaining.Parsed.Select(g => g.Key).Concat(context.Remaining.Raw).ToArray();
        if (unknown.Length > 0)
        {
            ConsoleUi.Err.MarkupLine($"[red]error:[/] unknown option(s) {Markup.Escape(string.Join(' ', unknown))}; see transfer serve --help");
            return ErrorReporter.UserError;
        }
        TorchRuntime.SetThreads(settings.Threads);
        // The command is the host: it opts in to NNPACK off, which LibTorch would otherwise try to start, and warn about,
        // on every convolution of a batch of 16 where it cannot run (TRANSFERSHARP_NNPACK=1 leaves it on).
        TorchRuntime.DisableNnpack();
        var options = new ServingOptions
        {
            MaxBatch = settings.MaxBatch,
            MaxDelay = TimeSpan.FromMilliseconds(settings.MaxDelayMs),
            MaxQueue = settings.MaxQueue,
            Workers = settings.Workers,
            MaxUploadBytes = (long)(settings.MaxUploadMb * 1024 * 1024),
            RequestTimeout = TimeSpan.FromSeconds(settings.TimeoutSeconds),
        };
        var model = ConsoleUi.WithDownloadProgress(p => ServedModel.Load(settings.Model, settings.Weights, settings.Engine, settings.Device,
            settings.Threads, p, cancellation));
        var urls = settings.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await using var app = TransferSharpServer.Build(model, options, urls);
        await app.StartAsync(cancellation);
        var addresses = TransferSharpServer.Addresses(app);
        if (settings.Json)
            Console.Out.WriteLine(JsonSerializer.Serialize(new { @event = "listening", model = model.Name, engine = model.Engine, urls = addresses },
                new JsonSerializerOptions(Json.Options) { WriteIndented = false }));
        else
        {
            ConsoleUi.Err.MarkupLine($"[green]serving[/] {Markup.Escape(model.Name)} ({model.Engine}; batches of up to {options.MaxBatch}, {options.MaxDelay.TotalMilliseconds:0.#} ms; {options.WorkersFor(model)} worker(s))");
            foreach (var a in addresses) ConsoleUi.Err.MarkupLine($"  page [link]{Markup.Escape(a)}/[/], API {Markup.Escape(a)}/openapi/v1.json, metrics {Markup.Escape(a)}/metrics");
            ConsoleUi.Err.MarkupLine("[grey]Ctrl+C or SIGTERM stops after answering the requests in flight.[/]");
        }
        // Ctrl+C (the CLI's token) or SIGTERM (the host's console lifetime) stops accepting, drains, and returns.
        await app.WaitForShutdownAsync(cancellation);
        if (!settings.Json) ConsoleUi.Err.MarkupLine("[grey]stopped[/]");
        return 0;
    }
}
