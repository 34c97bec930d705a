using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.IO;
using TransferSharp.Weights;

namespace TransferSharp.Cli;

/// <summary>A command-line value the command itself cannot use (an unknown --mode, --pool, …).</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Turns exceptions into one clear message and an exit code. TransferSharp's own errors
/// (<see cref="TransferSharpException"/>), usage errors and the file system's (a missing file, no permission)
/// are the user's to act on: one message, no stack trace, exit code 2. Anything else is a bug of ours:
/// reported as an internal error (exit 1), with its stack trace under --verbose.
/// </summary>
public static class ErrorReporter
{
    /// <summary>Exit code for bad usage or bad input.</summary>
    public const int UserError = 2;

    /// <summary>Exit code for an internal error.</summary>
    public const int InternalError = 1;

    /// <summary>Exit code when the run was cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;

    /// <summary>Print stack traces of internal errors (--verbose, or TRANSFERSHARP_VERBOSE=1).</summary>
    public static bool Verbose { get; set; } = Environment.GetEnvironmentVariable("TRANSFERSHARP_VERBOSE") is "1" or "true";

    // The library names options as its API does; the command line shows the flag a user typed.
    private static readonly Dictionary<string, string> Flags = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Epochs"] = "--epochs", ["HeadEpochs"] = "--head-epochs", ["BatchSize"] = "--batch-size",
        ["AccumulationSteps"] = "--accumulate", ["LearningRate"] = "--lr", ["BodyLearningRateFactor"] = "--body-lr-factor",
        ["LabelSmoothing"] = "--label-smoothing", ["ValidationSplit"] = "--val-split", ["Patience"] = "--patience", ["EmaDecay"] = "--ema", ["Mixup"] = "--mixup", ["CutMix"] = "--cutmix",
        ["UnfreezeTop"] = "--unfreeze", ["UnfreezeFrom"] = "--unfreeze-from", ["Device"] = "--device",
        ["ImageSize"] = "--image-size", ["Opset"] = "--opset", ["MaxLength"] = "--max-length", ["Dropout"] = "--dropout",
        ["EmbeddingDimension"] = "--embedding-dim", ["EmbeddingLearningRate"] = "--embedding-lr", ["Format"] = "--to",
        ["EncodingErrors"] = "--encoding-errors", ["Hidden"] = "--hidden", ["Tta"] = "--tta", ["HorizontalFlip"] = "--no-flip",
    };

    private static readonly System.Text.RegularExpressions.Regex OptionName =
        new(@"\b(" + string.Join("|", Flags.Keys) + @")\b", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>A library message with the flag after each API option name it mentions ("ValidationSplit (--val-split)").</summary>
    public static string WithFlags(string message) => OptionName.Replace(message, m => $"{m.Value} ({Flags[m.Value]})");

    /// <summary>Removes --verbose from the arguments (it may stand anywhere) and turns <see cref="Verbose"/> on.</summary>
    public static string[] TakeVerboseFlag(string[] args)
    {
        Verbose = args.Contains("--verbose") || Environment.GetEnvironmentVariable("TRANSFERSHARP_VERBOSE") is "1" or "true";
        return args.Where(a => a != "--verbose").ToArray();
    }

    /// <summary>Prints the message for <paramref name="ex"/> raised by the command line <paramref name="args"/>; returns the exit code.</summary>
    public static int Report(Exception ex, IReadOnlyList<string> args)
    {
        var err = ConsoleUi.Err;
        // Parallel work wraps a single failure; report the failure itself.
        while (ex is AggregateException { InnerExceptions.Count: 1 } aggregate) ex = aggregate.InnerExceptions[0];
        switch (ex)
        {
            case OperationCanceledException:
                err.MarkupLine($"[yellow]cancelled[/]; {Markup.Escape(CancelledMessage(ex, args))}");
                return Cancelled;
            case CommandParseException or CommandRuntimeException or UsageException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(Printable.Of(ex.Message))}");
                err.MarkupLine("run [bold]transfer --help[/] or [bold]transfer COMMAND --help[/] for usage.");
                return UserError;
            case InvalidOptionException option:
                var flag = Flags.TryGetValue(option.Option, out var f) ? f : option.Option;
                err.MarkupLine($"[red]error:[/] {Markup.Escape(flag)}: {Markup.Escape(Printable.Of(WithFlags(ex.Message)))}");
                return UserError;
            case TransferSharpException or IOException or UnauthorizedAccessException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(Printable.Of(ex is TransferSharpException ? WithFlags(ex.Message) : ex.Message))}");
                if (ex.InnerException is { } inner && ex is not TransferSharpException) err.MarkupLine($"[grey]  cause: {Markup.Escape(Printable.Of(inner.Message))}[/]");
                if (Verbose) err.WriteLine(Printable.Of(ex.ToString()));
                return UserError;
            default:
                err.MarkupLine($"[red]internal error ({Markup.Escape(ex.GetType().Name)}):[/] {Markup.Escape(Printable.Of(ex.Message))}");
                if (Verbose) err.WriteLine(Printable.Of(ex.ToString()));
                else err.MarkupLine("[grey]this is a bug in TransferSharp, not a problem with your input: run again with --verbose for the stack trace and report it.[/]");
                return InternalError;
        }
    }

    private static string? OptionValue(IReadOnlyList<string> args, params string[] names)
    {
        for (int i = 0; i + 1 < args.Count; i++)
            if (names.Contains(args[i])) return args[i + 1];
        return args.Select(a => names.Select(n => a.StartsWith(n + "=", StringComparison.Ordinal) ? a[(n.Length + 1)..] : null).FirstOrDefault(v => v is not null)).FirstOrDefault(v => v is not null);
    }

    /// <summary>What a cancelled command left behind, in the words of that command.</summary>
    public static string CancelledMessage(Exception ex, IReadOnlyList<string> args)
    {
        if (ex is DownloadCancelledException download)
            return $"the download stopped; the part received is kept in {download.PartialPath} and the next run resumes from it.";
        var command = string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2));
        return command switch
        {
            "train" => "no model file was written (an existing one is intact). With --checkpoint FILE the last finished epoch is kept: rerun with --resume to continue.",
            "extract" => $"finished chunks are kept in {OptionValue(args, "-o", "--out") ?? "OUT"}.partial/ and the same command continues after them; the output file appears only when complete.",
            _ => "no file was half-written: outputs appear only when complete (an existing one is intact).",
        };
    }
}
