using Spectre.Console;
using Spectre.Console.Cli;

namespace TransferSharp.Cli;

/// <summary>Turns exceptions into one clear message and an exit code, never a stack trace for user errors.</summary>
public static class ErrorReporter
{
    /// <summary>Exit code for bad usage or bad input.</summary>
    public const int UserError = 2;

    /// <summary>Exit code when the run was cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;

    public static int Report(Exception ex)
    {
        var err = ConsoleUi.Err;
        switch (ex)
        {
            case OperationCanceledException:
                err.MarkupLine("[yellow]cancelled[/]; finished files are intact; an interrupted download stays as .partial and resumes next time.");
                return Cancelled;
            case CommandParseException or CommandRuntimeException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
                err.MarkupLine("run [bold]transfer --help[/] or [bold]transfer COMMAND --help[/] for usage.");
                return UserError;
            case ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or KeyNotFoundException
                or TransferSharp.Vision.Graph.GraphException or NotSupportedException or FormatException or InvalidOperationException:
                err.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
                if (ex.InnerException is { } inner) err.MarkupLine($"[grey]  cause: {Markup.Escape(inner.Message)}[/]");
                return UserError;
            default:
                err.MarkupLine($"[red]unexpected error ({Markup.Escape(ex.GetType().Name)}):[/] {Markup.Escape(ex.Message)}");
                err.WriteLine(ex.ToString());
                return 1;
        }
    }
}
