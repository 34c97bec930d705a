using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.IO;
using TransferSharp.Weights;

namespace TransferSharp.Cli;

/// <summary>Turns exceptions into one clear message and an exit code, never a stack trace for user errors.</summary>
public static class ErrorReporter
{
    /// <summary>Exit code for bad usage or bad input.</summary>
    public const int UserError = 2;

    /// <summary>Exit code when the run was cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;

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
            case CommandParseException or CommandRuntimeException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(Printable.Of(ex.Message))}");
                err.MarkupLine("run [bold]transfer --help[/] or [bold]transfer COMMAND --help[/] for usage.");
                return UserError;
            case ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or KeyNotFoundException
                or TransferSharp.Vision.Graph.GraphException or NotSupportedException or FormatException or InvalidOperationException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(Printable.Of(ex.Message))}");
                if (ex.InnerException is { } inner) err.MarkupLine($"[grey]  cause: {Markup.Escape(Printable.Of(inner.Message))}[/]");
                return UserError;
            default:
                err.MarkupLine($"[red]unexpected error ({Markup.Escape(ex.GetType().Name)}):[/] {Markup.Escape(Printable.Of(ex.Message))}");
                err.WriteLine(Printable.Of(ex.ToString()));
                return 1;
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
