using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace TransferSharp.Text.Formats;

/// <summary>
/// word2vec's C binary format: a text header <c>count dim\n</c>, then per word its bytes up to a space and dim
/// little-endian float32 (the C tool puts a newline after each vector, gensim does not; a leading newline
/// before a word is skipped, as gensim does). Vectors are copied straight into the matrix, or — with
/// <see cref="WordVectorsLoadOptions.MemoryMap"/> — served from the mapped file in place.
/// </summary>
internal static unsafe class Word2VecBinaryReader
{
    // No real word is this long; a missing space within it means the file is not what it claims.
    private const int MaxWordBytes = 100_000;
    private static readonly System.Buffers.SearchValues<byte> TrailingWhitespace = System.Buffers.SearchValues.Create([(byte)'\n', (byte)'\r', (byte)' ', 0]);

    public static RawVectors Read(string path, WordVectorsLoadOptions options)
    {
        var clock = Stopwatch.StartNew();
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(file);
        if (length == 0) throw new WordVectorsFormatException(path, "the file is empty");
        var head = new byte[(int)Math.Min(length, 256)];
        RandomAccess.Read(file, head, 0);
        int nl = head.AsSpan().IndexOf((byte)'\n');
        if (nl < 0 || !TextVectorReader.TryParseHeader(head.AsSpan(0, nl), out long declared, out long dim))
            throw new WordVectorsFormatException(path, $"expected a word2vec header line 'count dim', found '{TextVectorReader.Preview(head.AsSpan(0, nl < 0 ? head.Length : nl))}'", 1, 0);
        long pos = nl + 1;
        long remaining = length - pos;
        long vectorBytes = dim * 4;
        if (dim <= 0 || dim > LoadSupport.MaxDimension || (declared > 0 && vectorBytes + 1 > remaining))
            throw new WordVectorsFormatException(path, $"dimension {dim} is impossible: one vector would need {vectorBytes} bytes and the file has {remaining} after its header "
                + $"(at most {LoadSupport.MaxDimension} dimensions are supported)", 1, 0);
        long rows = options.Limit is { } limit ? Math.Min(Math.Max(limit, 0), declared) : declared;
        // Each word takes at least a space and its vector: a header promising more than the file can hold is
        // caught before anything is allocated.
        if (rows > remaining / (vectorBytes + 1))
            throw new WordVectorsFormatException(path, $"the header declares {declared} words of {dim} dimensions, which need at least {rows * (vectorBytes + 1)} bytes, "
                + $"but only {remaining} follow the header: the file is truncated or the header is wrong", 1, 0);
        if (rows > int.MaxValue) throw new WordVectorsFormatException(path, $"{rows} words is more than one table can hold");
        bool map = options.MemoryMap && options.Precision == VectorPrecision.Float32;
        var words = new string[rows];
        long[]? offsets = map ? new long[rows] : null;
        VectorStorage? storage = map ? null : VectorStorage.Allocate((int)rows, (int)dim, options.Precision);
        int replaced = 0;
        try
        {
            var reader = new BlockReader(file, pos, length, (int)Math.Max(4 << 20, 2 * (vectorBytes + MaxWordBytes)));
            var row = options.Precision == VectorPrecision.Float16 ? new float[dim] : null;
            long lastReport = pos;
            for (int i = 0; i < rows; i++)
            {
                reader.Ensure(MaxWordBytes + 1 + vectorBytes);
                var window = reader.Available;
                int skip = 0;
                while (skip < window.Length && window[skip] == (byte)'\n') skip++;
                long wordAt = reader.Offset + skip;
                var rest = window[skip..];
                int space = rest[..Math.Min(rest.Length, MaxWordBytes + 1)].IndexOf((byte)' ');
                if (space < 0)
                {
                    if (rest.Length <= MaxWordBytes)
                        throw new WordVectorsFormatException(path, $"the file ends inside word {i + 1} of the {declared} the header declares: it is truncated", null, wordAt);
                    throw new WordVectorsFormatException(path, $"no space within {MaxWordBytes} bytes where word {i + 1} should start: not a word2vec binary file, "
                        + "or the header's dimension is wrong", null, wordAt);
                }
                long vectorAt = wordAt + space + 1;
                if (rest.Length - space - 1 < vectorBytes)
                    throw new WordVectorsFormatException(path, $"word {i + 1} of {declared} ('{TextVectorReader.Preview(rest[..space])}') needs {vectorBytes} bytes for its vector "
                        + $"but only {length - vectorAt} remain: the file is truncated", null, vectorAt);
                words[i] = LoadSupport.DecodeWord(rest[..space], options.EncodingErrors, path, wordAt, null, ref replaced);
                var vector = rest.Slice(space + 1, (int)vectorBytes);
                if (offsets is not null) offsets[i] = vectorAt;
                else if (row is null) vector.CopyTo(new Span<byte>(storage!.RowPointer(i), (int)vectorBytes));
                else
                {
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(vector).CopyTo(row);
                    storage!.SetRow(i, row);
                }
                reader.Consume(skip + space + 1 + (int)vectorBytes);
                if (reader.Offset - lastReport > 16 << 20)
                {
                    options.Progress?.Report(new LoadProgress("reading", reader.Offset, length));
                    options.Cancellation.ThrowIfCancellationRequested();
                    lastReport = reader.Offset;
                }
            }
            bool truncated = false;
            if (rows == declared)
            {
                reader.Ensure(4096);
                while (true)
                {
                    var tail = reader.Available;
                    if (tail.Length == 0) break;
                    int junk = tail.IndexOfAnyExcept(TrailingWhitespace);
                    if (junk >= 0)
                        throw new WordVectorsFormatException(path, $"{length - reader.Offset - junk} bytes follow the {declared} words the header declares: "
                            + "the header's count or dimension is wrong", null, reader.Offset + junk);
                    reader.Consume(tail.Length);
                    reader.Ensure(4096);
                }
            }
            else truncated = true;
            reader.Dispose();
            options.Progress?.Report(new LoadProgress("reading", length, length));
            if (offsets is not null)
            {
                var mapped = MappedFile.Open(path);
                try { storage = mapped.DetachAsStorage(0, (int)rows, (int)dim, VectorPrecision.Float32, offsets); }
                finally { mapped.Dispose(); }
            }
            return new RawVectors
            {
                Words = words,
                Storage = storage!,
                Info = new WordVectorsLoadInfo
                {
                    Path = path,
                    Format = VectorFileFormat.Word2VecBinary,
                    DeclaredCount = declared,
                    Dimension = (int)dim,
                    InvalidUtf8Words = replaced,
                    Truncated = truncated,
                    Precision = options.Precision,
                    MemoryMapped = offsets is not null,
                    Elapsed = clock.Elapsed,
                },
            };
        }
        catch
        {
            storage?.Dispose();
            throw;
        }
    }

    /// <summary>A forward-only window over a file range, refilled with positioned reads.</summary>
    private sealed class BlockReader(SafeFileHandle file, long start, long end, int capacity) : IDisposable
    {
        private byte[] _buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);
        private int _begin, _count;
        private long _next = start;

        /// <summary>File offset of <see cref="Available"/>[0].</summary>
        public long Offset => _next - _count;

        public ReadOnlySpan<byte> Available => _buffer.AsSpan(_begin, _count);

        /// <summary>Makes at least <paramref name="bytes"/> available, or all that is left of the range.</summary>
        public void Ensure(long bytes)
        {
            if (_count >= bytes || _next >= end) return;
            _buffer.AsSpan(_begin, _count).CopyTo(_buffer);
            _begin = 0;
            while (_count < bytes && _count < _buffer.Length && _next < end)
            {
                int read = RandomAccess.Read(file, _buffer.AsSpan(_count, (int)Math.Min(_buffer.Length - _count, end - _next)), _next);
                if (read <= 0) throw new IOException($"the file shrank while it was being read (no data at offset {_next})");
                _count += read;
                _next += read;
            }
        }

        public void Consume(int bytes)
        {
            _begin += bytes;
            _count -= bytes;
        }

        public void Dispose()
        {
            if (_buffer.Length > 0) System.Buffers.ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
