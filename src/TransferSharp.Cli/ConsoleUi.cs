using Spectre.Console;
using TransferSharp.Weights;

namespace TransferSharp.Cli;

/// <summary>Progress and messages on stderr, so stdout stays clean for --json.</summary>
public static class ConsoleUi
{
    private static (TextWriter Writer, IAnsiConsole Console)? _err, _out;

    /// <summary>A console writing to the current stderr (made anew when <see cref="Console.Error"/> was redirected
    /// since, so that a host that swaps the writer — tests, an app running commands in-process — gets the messages).</summary>
    public static IAnsiConsole Err => For(Console.Error, ref _err);

    /// <summary>A console writing to the current stdout, made anew as <see cref="Err"/> is when the writer was swapped.</summary>
    public static IAnsiConsole Out => For(Console.Out, ref _out);

    private static IAnsiConsole For(TextWriter writer, ref (TextWriter Writer, IAnsiConsole Console)? cache)
    {
        var current = cache;
        if (current is null || !ReferenceEquals(current.Value.Writer, writer))
        {
            current = (writer, AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) }));
            cache = current;
        }
        return current.Value.Console;
    }

    /// <summary>Runs work that may download checkpoints, drawing a progress bar per download.</summary>
    public static T WithDownloadProgress<T>(Func<IProgress<DownloadProgress>, T> work)
    {
        if (Console.IsErrorRedirected)
        {
            var last = DateTime.MinValue;
            return work(new SyncProgress<DownloadProgress>(p =>
            {
                if (p.Completed || DateTime.UtcNow - last > TimeSpan.FromSeconds(5))
                {
                    last = DateTime.UtcNow;
                    Console.Error.WriteLine($"download {p.Url}: {p.BytesReceived / 1e6:F1}/{(p.TotalBytes is long t ? (t / 1e6).ToString("F1") : "?")} MB{(p.Completed ? " done" : "")}");
                }
            }));
        }
        T result = default!;
        Err.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = work(new SyncProgress<DownloadProgress>(p =>
                {
                    if (!tasks.TryGetValue(p.Url, out var task))
                    {
                        task = ctx.AddTask(Path.GetFileName(new Uri(p.Url).LocalPath), maxValue: p.TotalBytes ?? 1);
                        tasks[p.Url] = task;
                    }
                    if (p.TotalBytes is long total) task.MaxValue = total;
                    task.Value = p.BytesReceived;
                    if (p.Completed) task.StopTask();
                }));
            });
        return result;
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to a context we do not have),
    /// one report at a time when several threads report.</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly object _lock = new();

        public void Report(T value)
        {
            lock (_lock) report(value);
        }
    }
}
