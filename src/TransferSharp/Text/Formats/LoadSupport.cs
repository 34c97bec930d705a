using System.Text;
using System.Text.Unicode;

namespace TransferSharp.Text.Formats;

/// <summary>What a reader hands to <see cref="WordVectors"/>: words in file order (duplicates still in), their
/// rows, and what was found on the way.</summary>
internal sealed record RawVectors
{
    public required string[] Words { get; init; }
    public required VectorStorage Storage { get; init; }
    public required WordVectorsLoadInfo Info { get; init; }
    public FastText.FastTextModel? Subwords { get; init; }
}

/// <summary>Helpers shared by the readers: parallel runs with progress, UTF-8 word decoding, first-error capture.</summary>
internal static class LoadSupport
{
    public const int MaxDimension = 1 << 20;

    public static int ThreadCount(WordVectorsLoadOptions options) =>
        options.Threads > 0 ? options.Threads : Environment.ProcessorCount;

    /// <summary>Runs body(0..count-1) on worker threads while this thread reports progress and watches for
    /// cancellation; exceptions come back unwrapped.</summary>
    public static void RunParallel(int count, WordVectorsLoadOptions options, Action<int> body, Func<long> done, long total, string stage)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = ThreadCount(options), CancellationToken = options.Cancellation };
        var task = Task.Run(() => Parallel.For(0, count, parallel, body));
        try
        {
            while (!task.Wait(100)) options.Progress?.Report(new LoadProgress(stage, done(), total));
        }
        catch (AggregateException e)
        {
            var inner = e.Flatten().InnerExceptions;
            var first = inner.FirstOrDefault(x => x is OperationCanceledException) ?? inner[0];
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
        options.Progress?.Report(new LoadProgress(stage, total, total));
    }

    private static readonly UTF8Encoding Utf8Replacing = new(false, false);

    /// <summary>Decodes a word; invalid UTF-8 either fails (naming the absolute byte offset) or is replaced.</summary>
    public static string DecodeWord(ReadOnlySpan<byte> bytes, EncodingErrorMode mode, string path, long absoluteOffset, long? line,
        ref int replacedCount)
    {
        if (Utf8.IsValid(bytes)) return Encoding.UTF8.GetString(bytes);
        if (mode == EncodingErrorMode.Replace)
        {
            Interlocked.Increment(ref replacedCount);
            return Utf8Replacing.GetString(bytes);
        }
        var chars = new char[bytes.Length];
        Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false);
        var bad = bytes[read..Math.Min(bytes.Length, read + 4)];
        throw new WordVectorsFormatException(path,
            $"the word is not valid UTF-8 (bytes {Convert.ToHexString(bad)} at this offset); "
            + "set EncodingErrors to Replace to replace invalid bytes with U+FFFD",
            line, absoluteOffset + read);
    }
}

/// <summary>Keeps the error found earliest in the file when several workers fail at once.</summary>
internal sealed class FirstError
{
    private Exception? _error;
    private long _position = long.MaxValue;
    private volatile bool _failed;

    public bool Failed => _failed;

    public void Record(long position, Exception error)
    {
        lock (this)
        {
            if (position < _position)
            {
                _position = position;
                _error = error;
            }
            _failed = true;
        }
    }

    public void ThrowIfAny()
    {
        if (_error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_error).Throw();
    }
}
