using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TransferSharp.IO;

namespace TransferSharp.Text.Formats;

/// <summary>
/// TransferSharp's binary vector cache (.tswv): a 4 KiB header, the matrix (page-aligned, float32 or float16,
/// row-major), the words (length-prefixed UTF-8) and a JSON note of where the vectors came from. It is made
/// from a text file once and afterwards opened by memory-mapping the matrix: no parsing, no copy, pages
/// shared between processes. Written atomically; a stale or damaged cache is ignored and rewritten.
/// </summary>
internal static unsafe class VectorCache
{
    public const string Extension = ".tswv";
    private static readonly byte[] Magic = "TSWVCACH"u8.ToArray();
    private const int Version = 1;
    private const int HeaderBytes = 4096;

    private sealed record SourceNote(string? Source, long SourceLength, long SourceTicks, VectorFileFormat Format, long? DeclaredCount,
        int DuplicatesSkipped, int InvalidUtf8Words, int WordsWithSpaces, int BlankLines, bool Truncated);

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= Magic.Length && head[..Magic.Length].SequenceEqual(Magic);

    /// <summary>The cache file for a source and the options that change what loading it gives.</summary>
    public static string PathFor(string source, VectorFileFormat format, WordVectorsLoadOptions options, string directory)
    {
        var info = new FileInfo(source);
        var key = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}|{format}|{options.Limit}|{options.Precision}|{options.EncodingErrors}";
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16].ToLowerInvariant();
        return Path.Combine(directory, $"{Path.GetFileNameWithoutExtension(source)}-{hash}{Extension}");
    }

    /// <summary>Opens a cache made from <paramref name="source"/> if it is there, intact and still matches the
    /// source's size and time stamp; otherwise null.</summary>
    public static RawVectors? TryOpen(string cachePath, string source, WordVectorsLoadOptions options)
    {
        if (!File.Exists(cachePath)) return null;
        try
        {
            var raw = Open(cachePath, options with { MemoryMap = true });
            var info = new FileInfo(source);
            if (raw.Info.Path != info.FullName && raw.Info.Path != source) { raw.Storage.Dispose(); return null; }
            return raw;
        }
        catch (WordVectorsFormatException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static bool TryWrite(WordVectors vectors, string cachePath, string source, CancellationToken cancellation)
    {
        try
        {
            Write(vectors, cachePath, source, cancellation);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static void Write(WordVectors vectors, string path, string? sourcePath, CancellationToken cancellation)
    {
        var storage = vectors.Storage;
        var li = vectors.LoadInfo;
        var source = sourcePath is null ? null : new FileInfo(sourcePath);
        var note = new SourceNote(source?.FullName ?? li.Path, source?.Length ?? 0, source?.LastWriteTimeUtc.Ticks ?? 0, li.Format, li.DeclaredCount,
            li.DuplicatesSkipped, li.InvalidUtf8Words, li.WordsWithSpaces, li.BlankLines, li.Truncated);
        var noteBytes = EncodeNote(note);
        long matrixBytes = storage.Bytes;
        long wordsOffset = HeaderBytes + matrixBytes;
        var wordBytes = vectors.Words.Select(w => Encoding.UTF8.GetBytes(w)).ToArray();
        long wordsLength = wordBytes.Sum(b => 4L + b.Length);
        AtomicFile.Write(path, fs =>
        {
            var header = new byte[HeaderBytes];
            Magic.CopyTo(header, 0);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), (int)storage.Precision);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), storage.Rows);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), storage.Dim);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), HeaderBytes);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(40), wordsOffset);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(48), wordsLength);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(56), wordsOffset + wordsLength);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(64), noteBytes.Length);
            fs.Write(header);
            for (int i = 0; i < storage.Rows; i++)
            {
                fs.Write(new ReadOnlySpan<byte>(storage.RowPointer(i), (int)storage.RowBytes));
                if ((i & 0xFFFF) == 0) cancellation.ThrowIfCancellationRequested();
            }
            Span<byte> length = stackalloc byte[4];
            foreach (var b in wordBytes)
            {
                BinaryPrimitives.WriteInt32LittleEndian(length, b.Length);
                fs.Write(length);
                fs.Write(b);
            }
            fs.Write(noteBytes);
        });
    }

    public static RawVectors Open(string path, WordVectorsLoadOptions options)
    {
        var clock = Stopwatch.StartNew();
        var file = MappedFile.Open(path);
        try
        {
            long length = file.Length;
            if (length < HeaderBytes || !HasMagic(file.Span(0, Magic.Length)))
                throw new WordVectorsFormatException(path, "not a TransferSharp vector cache (no TSWVCACH header)", null, 0);
            var h = file.Span(0, HeaderBytes);
            int version = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
            if (version != Version) throw new WordVectorsFormatException(path, $"cache version {version} is not supported (this build reads {Version}); delete the cache to rebuild it", null, 8);
            int precisionCode = BinaryPrimitives.ReadInt32LittleEndian(h[12..]);
            long rows = BinaryPrimitives.ReadInt64LittleEndian(h[16..]), dim = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
            long matrixOffset = BinaryPrimitives.ReadInt64LittleEndian(h[32..]), wordsOffset = BinaryPrimitives.ReadInt64LittleEndian(h[40..]);
            long wordsLength = BinaryPrimitives.ReadInt64LittleEndian(h[48..]), noteOffset = BinaryPrimitives.ReadInt64LittleEndian(h[56..]);
            long noteLength = BinaryPrimitives.ReadInt64LittleEndian(h[64..]);
            if (precisionCode is not (0 or 1) || rows < 0 || rows > int.MaxValue || dim <= 0 || dim > LoadSupport.MaxDimension
                || matrixOffset != HeaderBytes || wordsOffset != matrixOffset + rows * dim * (precisionCode == 0 ? 4 : 2)
                || wordsLength < rows * 4 || noteOffset != wordsOffset + wordsLength || noteLength < 0 || noteOffset + noteLength != length)
                throw new WordVectorsFormatException(path, $"the cache header is inconsistent ({rows} × {dim}, {length} bytes): the file is damaged; delete it to rebuild", null, 0);
            var precision = (VectorPrecision)precisionCode;
            var words = new string[rows];
            long pos = wordsOffset;
            for (int i = 0; i < rows; i++)
            {
                int n = BinaryPrimitives.ReadInt32LittleEndian(file.Span(pos, 4));
                if (n < 0 || pos + 4 + n > noteOffset) throw new WordVectorsFormatException(path, $"word {i} runs past the word table: the cache is damaged", null, pos);
                words[i] = Encoding.UTF8.GetString(file.Span(pos + 4, n));
                pos += 4 + n;
            }
            var note = DecodeNote(file.Span(noteOffset, noteLength)) ?? throw new WordVectorsFormatException(path, "the cache's source note is damaged", null, noteOffset);
            if (note.Source is { } src && File.Exists(src))
            {
                var si = new FileInfo(src);
                if (note.SourceLength != 0 && (si.Length != note.SourceLength || si.LastWriteTimeUtc.Ticks != note.SourceTicks))
                    throw new WordVectorsFormatException(path, $"the cache is stale: {src} changed since it was made", null, noteOffset);
            }
            VectorStorage storage;
            if (options.MemoryMap && options.Precision == precision) storage = file.DetachAsStorage(matrixOffset, (int)rows, (int)dim, precision, null);
            else storage = CopyMatrix(file, matrixOffset, (int)rows, (int)dim, precision, options.Precision);
            return new RawVectors
            {
                Words = words,
                Storage = storage,
                Info = new WordVectorsLoadInfo
                {
                    Path = note.Source ?? path,
                    Format = note.Format,
                    DeclaredCount = note.DeclaredCount,
                    InvalidUtf8Words = note.InvalidUtf8Words,
                    WordsWithSpaces = note.WordsWithSpaces,
                    BlankLines = note.BlankLines,
                    Truncated = note.Truncated,
                    CachePath = path,
                    FromCache = true,
                    Elapsed = clock.Elapsed,
                },
            };
        }
        finally
        {
            file.Dispose();
        }
    }

    // The note is "key=value" lines; the source path comes last, so it may contain anything but a newline.
    private static byte[] EncodeNote(SourceNote n) => Encoding.UTF8.GetBytes(string.Join('\n',
        $"length={n.SourceLength}", $"ticks={n.SourceTicks}", $"format={(int)n.Format}", $"declared={n.DeclaredCount?.ToString() ?? ""}",
        $"duplicates={n.DuplicatesSkipped}", $"invalidUtf8={n.InvalidUtf8Words}", $"withSpaces={n.WordsWithSpaces}", $"blank={n.BlankLines}",
        $"truncated={(n.Truncated ? 1 : 0)}", $"source={n.Source}"));

    private static SourceNote? DecodeNote(ReadOnlySpan<byte> bytes)
    {
        var fields = new Dictionary<string, string>();
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            int eq = line.IndexOf('=');
            if (eq > 0) fields[line[..eq]] = line[(eq + 1)..];
        }
        long L(string k) => fields.TryGetValue(k, out var v) && long.TryParse(v, out long x) ? x : throw new FormatException(k);
        try
        {
            return new SourceNote(fields.GetValueOrDefault("source"), L("length"), L("ticks"), (VectorFileFormat)L("format"),
                fields.TryGetValue("declared", out var d) && d.Length > 0 ? long.Parse(d) : null,
                (int)L("duplicates"), (int)L("invalidUtf8"), (int)L("withSpaces"), (int)L("blank"), L("truncated") != 0);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static VectorStorage CopyMatrix(MappedFile file, long offset, int rows, int dim, VectorPrecision stored, VectorPrecision wanted)
    {
        var storage = VectorStorage.Allocate(rows, dim, wanted);
        long rowBytes = (long)dim * (stored == VectorPrecision.Float32 ? 4 : 2);
        if (stored == wanted)
        {
            Buffer.MemoryCopy(file.Data + offset, storage.RowPointer(0), rows * rowBytes, rows * rowBytes);
            return storage;
        }
        var row = new float[dim];
        for (int i = 0; i < rows; i++)
        {
            byte* p = file.Data + offset + i * rowBytes;
            if (stored == VectorPrecision.Float32) new ReadOnlySpan<float>(p, dim).CopyTo(row);
            else System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, dim), row);
            storage.SetRow(i, row);
        }
        return storage;
    }
}
