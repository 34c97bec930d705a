using System.Diagnostics;

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

    public static RawVectors Read(string path, WordVectorsLoadOptions options)
    {
        var clock = Stopwatch.StartNew();
        var file = MappedFile.Open(path);
        try
        {
            if (file.Length == 0) throw new WordVectorsFormatException(path, "the file is empty");
            byte* data = file.Data;
            long length = file.Length;
            var headerSpan = file.Span(0, Math.Min(length, 256));
            int nl = headerSpan.IndexOf((byte)'\n');
            if (nl < 0 || !TextVectorReader.TryParseHeader(headerSpan[..nl], out long declared, out long dim))
                throw new WordVectorsFormatException(path, $"expected a word2vec header line 'count dim', found '{TextVectorReader.Preview(headerSpan[..(nl < 0 ? headerSpan.Length : nl)])}'", 1, 0);
            long pos = nl + 1;
            long remaining = length - pos;
            long vectorBytes = dim * 4;
            if (dim <= 0 || dim > LoadSupport.MaxDimension || vectorBytes + 2 > Math.Max(remaining, 2) && declared > 0)
                throw new WordVectorsFormatException(path, $"dimension {dim} is impossible: one vector would need {vectorBytes} bytes and the file has {remaining} after its header "
                    + $"(at most {LoadSupport.MaxDimension} dimensions are supported)", 1, 0);
            long rows = options.Limit is { } limit ? Math.Min(Math.Max(limit, 0), declared) : declared;
            // Each word takes at least one byte, a space and its vector: a header promising more than the
            // file can hold is caught before anything is allocated.
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
                var row = options.Precision == VectorPrecision.Float16 ? new float[dim] : null;
                long lastReport = pos;
                for (int i = 0; i < rows; i++)
                {
                    while (pos < length && data[pos] == (byte)'\n') pos++;
                    var window = file.Span(pos, MaxWordBytes + 1);
                    int space = window.IndexOf((byte)' ');
                    if (space < 0)
                    {
                        if (pos + window.Length >= length)
                            throw new WordVectorsFormatException(path, $"the file ends inside word {i + 1} of the {declared} the header declares: it is truncated", null, pos);
                        throw new WordVectorsFormatException(path, $"no space within {MaxWordBytes} bytes where word {i + 1} should start: not a word2vec binary file, "
                            + "or the header's dimension is wrong", null, pos);
                    }
                    long vectorAt = pos + space + 1;
                    if (vectorAt + vectorBytes > length)
                        throw new WordVectorsFormatException(path, $"word {i + 1} of {declared} ('{TextVectorReader.Preview(window[..space])}') needs {vectorBytes} bytes for its vector "
                            + $"but only {length - vectorAt} remain: the file is truncated", null, vectorAt);
                    words[i] = LoadSupport.DecodeWord(window[..space], options.EncodingErrors, path, pos, null, ref replaced);
                    if (offsets is not null) offsets[i] = vectorAt;
                    else if (row is null) Buffer.MemoryCopy(data + vectorAt, storage!.RowPointer(i), vectorBytes, vectorBytes);
                    else
                    {
                        new ReadOnlySpan<float>(data + vectorAt, (int)dim).CopyTo(row);
                        storage!.SetRow(i, row);
                    }
                    pos = vectorAt + vectorBytes;
                    if (pos - lastReport > 16 << 20)
                    {
                        options.Progress?.Report(new LoadProgress("reading", pos, length));
                        options.Cancellation.ThrowIfCancellationRequested();
                        lastReport = pos;
                    }
                }
                bool truncated = false;
                if (rows == declared)
                {
                    long tail = pos;
                    while (tail < length && data[tail] is (byte)'\n' or (byte)'\r' or (byte)' ' or 0) tail++;
                    if (tail < length)
                        throw new WordVectorsFormatException(path, $"{length - tail} bytes follow the {declared} words the header declares: "
                            + "the header's count or dimension is wrong", null, tail);
                }
                else truncated = true;
                options.Progress?.Report(new LoadProgress("reading", length, length));
                if (offsets is not null) storage = file.DetachAsStorage(0, (int)rows, (int)dim, VectorPrecision.Float32, offsets);
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
        finally
        {
            file.Dispose();
        }
    }
}
