using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;

namespace TransferSharp.Text.Formats;

/// <summary>
/// word2vec text, fastText .vec and GloVe: the file is cut into chunks at line boundaries and read with
/// positioned reads through per-thread buffers (so the process holds the matrix, not the file),
/// lines are counted per chunk in parallel (so every chunk knows its first row and line number), the matrix
/// is allocated once at its final size, and the chunks are parsed in parallel straight into their rows.
/// </summary>
internal static unsafe class TextVectorReader
{
    private const long SingleChunkBytes = 4 << 20;
    private const long MaxChunkBytes = 1L << 30;

    private readonly record struct Chunk(long Start, long End);

    /// <summary>Reads word2vec text or fastText .vec (a "count dim" header line is required) or GloVe (no header).</summary>
    public static RawVectors Read(string path, WordVectorsLoadOptions options, VectorFileFormat format)
    {
        var clock = Stopwatch.StartNew();
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.None);
        long length = RandomAccess.GetLength(file);
        if (length == 0) throw new WordVectorsFormatException(path, "the file is empty");

        byte[] firstLine;
        using (var reader = new LineReader(file, 0, length, 64 * 1024))
        {
            reader.Next(out var line, out _);
            firstLine = line.ToArray();
        }
        bool hasHeader = format != VectorFileFormat.GloVe;
        long pos = 0, firstLineNumber = 1;
        long? declared = null;
        int dim;
        if (hasHeader)
        {
            if (!TryParseHeader(firstLine, out long count, out long declaredDim))
                throw new WordVectorsFormatException(path, $"expected a header line 'count dim' (word2vec text / fastText .vec), found '{Preview(firstLine)}'; "
                    + "a GloVe file has no header (format GloVe)", 1, 0);
            CheckDimension(path, declaredDim, length);
            declared = count;
            dim = (int)declaredDim;
            pos = Math.Min(firstLine.Length + 1, length);
            firstLineNumber = 2;
        }
        else
        {
            dim = DetectDimension(path, file, length);
            CheckDimension(path, dim, length);
        }

        long end = length;
        bool truncated = false;
        if (options.Limit is { } limit)
        {
            long rowLimit = declared is { } d ? Math.Min(limit, d) : limit;
            end = EndAfterRows(file, pos, length, rowLimit);
            truncated = HasContent(file, end, length);
        }

        var chunks = SplitChunks(file, pos, end, LoadSupport.ThreadCount(options));
        var rowCounts = new long[chunks.Length];
        var lineCounts = new long[chunks.Length];
        long scanned = 0;
        LoadSupport.RunParallel(chunks.Length, options, k =>
        {
            (rowCounts[k], lineCounts[k]) = CountLines(file, chunks[k]);
            Interlocked.Add(ref scanned, chunks[k].End - chunks[k].Start);
        }, () => Interlocked.Read(ref scanned), end - pos, "scanning");

        long rows = rowCounts.Sum();
        long blank = lineCounts.Sum() - rows;
        if (declared is { } v)
        {
            long expected = options.Limit is { } l ? Math.Min(l, v) : v;
            if (rows < expected)
                throw new WordVectorsFormatException(path, $"the header declares {v} words but the file holds only {rows} vector lines: "
                    + "it is truncated, or the header's count is wrong", firstLineNumber + lineCounts.Sum(), length);
            if (rows > expected)
                throw new WordVectorsFormatException(path, $"the header declares {v} words but the file holds {rows} vector lines: "
                    + "the header's count is wrong (pass a limit to read only the first words)", 1, 0);
        }
        if (rows > int.MaxValue) throw new WordVectorsFormatException(path, $"{rows} words is more than one table can hold ({int.MaxValue})");

        var storage = VectorStorage.Allocate((int)rows, dim, options.Precision);
        var words = new string[rows];
        var firstRow = new long[chunks.Length];
        var firstLineOfChunk = new long[chunks.Length];
        for (int k = 1; k < chunks.Length; k++)
        {
            firstRow[k] = firstRow[k - 1] + rowCounts[k - 1];
            firstLineOfChunk[k] = firstLineOfChunk[k - 1] + lineCounts[k - 1];
        }
        var error = new FirstError();
        var context = new ParseContext(path, dim, storage, words, options, error);
        long parsed = 0;
        try
        {
            LoadSupport.RunParallel(chunks.Length, options, k =>
            {
                ParseChunk(context, file, chunks[k], firstRow[k], firstLineNumber + firstLineOfChunk[k], ref parsed);
            }, () => Interlocked.Read(ref parsed), end - pos, "parsing");
            error.ThrowIfAny();
        }
        catch
        {
            storage.Dispose();
            throw;
        }

        return new RawVectors
        {
            Words = words,
            Storage = storage,
            Info = new WordVectorsLoadInfo
            {
                Path = path,
                Format = format,
                DeclaredCount = declared,
                Dimension = dim,
                InvalidUtf8Words = context.Replaced,
                WordsWithSpaces = context.WordsWithSpaces,
                BlankLines = (int)Math.Min(int.MaxValue, blank),
                Truncated = truncated,
                Precision = options.Precision,
                Elapsed = clock.Elapsed,
            },
        };
    }

    private sealed class ParseContext(string path, int dim, VectorStorage storage, string[] words, WordVectorsLoadOptions options, FirstError error)
    {
        public readonly string Path = path;
        public readonly int Dim = dim;
        public readonly VectorStorage Storage = storage;
        public readonly string[] Words = words;
        public readonly WordVectorsLoadOptions Options = options;
        public readonly FirstError Error = error;
        public int Replaced;
        public int WordsWithSpaces;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ParseChunk(ParseContext c, SafeFileHandle file, Chunk chunk, long row, long lineNumber, ref long parsed)
    {
        float[]? halfBuffer = c.Storage.Precision == VectorPrecision.Float16 ? new float[c.Dim] : null;
        long sinceReport = 0;
        using var reader = new LineReader(file, chunk.Start, chunk.End);
        try
        {
            while (reader.Next(out var line, out long offset))
            {
                if (!IsBlank(line))
                {
                    ParseLine(c, line, offset, (int)row, lineNumber, halfBuffer);
                    row++;
                }
                lineNumber++;
                sinceReport += line.Length + 1;
                if (sinceReport > 1 << 20)
                {
                    Interlocked.Add(ref parsed, sinceReport);
                    sinceReport = 0;
                    if (c.Error.Failed || c.Options.Cancellation.IsCancellationRequested) return;
                }
            }
            Interlocked.Add(ref parsed, sinceReport);
        }
        catch (WordVectorsFormatException e)
        {
            c.Error.Record(e.LineNumber ?? long.MaxValue, e);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ParseLine(ParseContext c, ReadOnlySpan<byte> line, long offset, int row, long lineNumber, float[]? halfBuffer)
    {
        int len = line.Length;
        int wordEnd = line.IndexOfAny((byte)' ', (byte)'\t');
        Span<float> values = halfBuffer ?? new Span<float>(c.Storage.RowPointer(row), c.Dim);
        int pos = wordEnd;
        bool fast = wordEnd > 0;
        for (int j = 0; fast && j < c.Dim; j++)
        {
            while (pos < len && (line[pos] == (byte)' ' || line[pos] == (byte)'\t')) pos++;
            int n = pos < len ? DecimalFloat.Parse(line[pos..], out values[j]) : 0;
            pos += n;
            fast = n > 0 && (pos == len || IsSpace(line[pos]));
        }
        if (fast)
        {
            while (pos < len && IsSpace(line[pos])) pos++;
            fast = pos == len;
        }
        ReadOnlySpan<byte> word;
        if (fast) word = line[..wordEnd];
        else
        {
            word = SlowParse(c, line, lineNumber, offset, values);
            if (word.IndexOfAny((byte)' ', (byte)'\t') >= 0) Interlocked.Increment(ref c.WordsWithSpaces);
        }
        c.Words[row] = LoadSupport.DecodeWord(word, c.Options.EncodingErrors, c.Path, offset, lineNumber, ref c.Replaced);
        if (halfBuffer is not null) c.Storage.SetRow(row, halfBuffer);
    }

    /// <summary>
    /// A line the fast path could not take: either an error (too few or too many numbers, something that is
    /// not a number) or a word containing spaces (GloVe 840B has a few): more fields than dim + 1 where the
    /// leading fields are not all numbers and the last dim are.
    /// </summary>
    private static ReadOnlySpan<byte> SlowParse(ParseContext c, ReadOnlySpan<byte> line, long lineNumber, long offset, Span<float> values)
    {
        var tokens = Tokenize(line);
        if (tokens.Count == 0 || tokens[0].Start > 0)
            throw new WordVectorsFormatException(c.Path, "the line starts with whitespace, so it has no word", lineNumber, offset);
        int valueCount = tokens.Count - 1;
        if (valueCount < c.Dim)
        {
            int bad = FirstNonNumber(line, tokens, 1, tokens.Count);
            throw new WordVectorsFormatException(c.Path, bad >= 0
                ? $"value {bad} '{Preview(Slice(line, tokens[bad]))}' is not a number"
                : $"{valueCount} values, expected {c.Dim} (the file's dimension)", lineNumber, offset);
        }
        int firstValue = tokens.Count - c.Dim;
        int badValue = FirstNonNumber(line, tokens, firstValue, tokens.Count);
        if (badValue >= 0)
            throw new WordVectorsFormatException(c.Path, $"value {badValue - firstValue + 1} '{Preview(Slice(line, tokens[badValue]))}' is not a number", lineNumber, offset);
        if (valueCount > c.Dim && FirstNonNumber(line, tokens, 1, firstValue) < 0)
            throw new WordVectorsFormatException(c.Path, $"{valueCount} values, expected {c.Dim}", lineNumber, offset);
        for (int j = 0; j < c.Dim; j++) DecimalFloat.Parse(Slice(line, tokens[firstValue + j]), out values[j]);
        var last = tokens[firstValue - 1];
        return line[..(last.Start + last.Length)];
    }

    private static int FirstNonNumber(ReadOnlySpan<byte> line, List<(int Start, int Length)> tokens, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            var t = Slice(line, tokens[i]);
            if (DecimalFloat.Parse(t, out _) != t.Length) return i;
        }
        return -1;
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> line, (int Start, int Length) t) => line.Slice(t.Start, t.Length);

    private static List<(int Start, int Length)> Tokenize(ReadOnlySpan<byte> line)
    {
        var tokens = new List<(int, int)>();
        int i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && IsSpace(line[i])) i++;
            int start = i;
            while (i < line.Length && !IsSpace(line[i])) i++;
            if (i > start) tokens.Add((start, i - start));
        }
        return tokens;
    }

    private static int DetectDimension(string path, SafeFileHandle file, long length)
    {
        long lineNumber = 1;
        using var reader = new LineReader(file, 0, length, 1 << 20);
        while (reader.Next(out var line, out long offset))
        {
            if (!IsBlank(line))
            {
                var tokens = Tokenize(line);
                int trailingNumbers = 0;
                for (int i = tokens.Count - 1; i >= 0 && DecimalFloat.Parse(Slice(line, tokens[i]), out _) == tokens[i].Length; i--) trailingNumbers++;
                int dim = trailingNumbers == tokens.Count ? tokens.Count - 1 : trailingNumbers;
                if (dim <= 0)
                    throw new WordVectorsFormatException(path, $"the first line '{Preview(line)}' has no numbers after its word: not a GloVe or word2vec text file", lineNumber, offset);
                return dim;
            }
            lineNumber++;
        }
        throw new WordVectorsFormatException(path, "the file holds only blank lines");
    }

    private static void CheckDimension(string path, long dim, long fileLength)
    {
        if (dim <= 0 || dim > LoadSupport.MaxDimension || dim * 2 > fileLength)
            throw new WordVectorsFormatException(path, $"dimension {dim} is impossible for a text file of {fileLength} bytes "
                + $"(each value needs at least 2 bytes; at most {LoadSupport.MaxDimension} dimensions are supported)", 1);
    }

    internal static bool TryParseHeader(ReadOnlySpan<byte> line, out long count, out long dim)
    {
        count = dim = 0;
        var tokens = Tokenize(line);
        return tokens.Count == 2
            && long.TryParse(Slice(line, tokens[0]), NumberStyles.None, CultureInfo.InvariantCulture, out count)
            && long.TryParse(Slice(line, tokens[1]), NumberStyles.None, CultureInfo.InvariantCulture, out dim);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (long Rows, long Lines) CountLines(SafeFileHandle file, Chunk chunk)
    {
        long rows = 0, lines = 0;
        using var reader = new LineReader(file, chunk.Start, chunk.End);
        while (reader.Next(out var line, out _))
        {
            if (!IsBlank(line)) rows++;
            lines++;
        }
        return (rows, lines);
    }

    /// <summary>The offset just after the <paramref name="rows"/>-th non-blank line from <paramref name="pos"/>.</summary>
    private static long EndAfterRows(SafeFileHandle file, long pos, long length, long rows)
    {
        long found = 0;
        using var reader = new LineReader(file, pos, length);
        while (found < rows && reader.Next(out var line, out _))
            if (!IsBlank(line)) found++;
        return Math.Min(reader.Position, length);
    }

    private static bool HasContent(SafeFileHandle file, long pos, long length)
    {
        using var reader = new LineReader(file, pos, length, 64 * 1024);
        while (reader.Next(out var line, out _))
            if (!IsBlank(line)) return true;
        return false;
    }

    private static Chunk[] SplitChunks(SafeFileHandle file, long start, long end, int threads)
    {
        long size = end - start;
        int count = size <= SingleChunkBytes ? 1 : (int)Math.Max(threads * 8L, (size + MaxChunkBytes - 1) / (MaxChunkBytes / 2));
        var bounds = new List<long> { start };
        for (int k = 1; k < count; k++)
        {
            long target = start + size * k / count;
            if (target <= bounds[^1]) continue;
            long b = Math.Min(LineReader.FindNewline(file, target, end) + 1, end);
            if (b > bounds[^1] && b < end) bounds.Add(b);
        }
        bounds.Add(end);
        var chunks = new Chunk[bounds.Count - 1];
        for (int k = 0; k < chunks.Length; k++) chunks[k] = new Chunk(bounds[k], bounds[k + 1]);
        return chunks;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    private static bool IsBlank(ReadOnlySpan<byte> line)
    {
        foreach (byte b in line)
            if (!IsSpace(b)) return false;
        return true;
    }

    internal static string Preview(ReadOnlySpan<byte> bytes)
    {
        var s = IO.Printable.Of(System.Text.Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 60)]));
        return bytes.Length > 60 ? s + "…" : s;
    }
}
