using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;
using TransferSharp.IO;

namespace TransferSharp.Weights;

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header naming
/// each tensor's dtype, shape and byte range, then the raw data. Reading memory-maps the file and
/// copies each tensor once into its own memory; every field is checked against the file first.
/// </summary>
public static class SafeTensors
{
    /// <summary>The file extension.</summary>
    public const string Extension = ".safetensors";

    // The reference implementation refuses headers over 100 MB; so do we, before allocating one.
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private const string MetadataKey = "__metadata__";

    private static readonly (string Name, ScalarType Type)[] DTypes =
    [
        ("F64", ScalarType.Float64), ("F32", ScalarType.Float32), ("F16", ScalarType.Float16), ("BF16", ScalarType.BFloat16),
        ("I64", ScalarType.Int64), ("I32", ScalarType.Int32), ("I16", ScalarType.Int16), ("I8", ScalarType.Int8),
        ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    ];

    private sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    /// <summary>Reads every tensor and the metadata. Throws <see cref="CheckpointFormatException"/> naming
    /// the file and the problem when anything is inconsistent.</summary>
    public static StateDict Read(string path)
    {
        TensorBytes.EnsureLittleEndianHost();
        var (entries, metadata, dataStart, fileLength) = ReadHeader(path);
        var dict = new StateDict(path, metadata);
        try
        {
            if (entries.Count == 0) return dict;
            using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
            unsafe
            {
                byte* basePtr = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
                try
                {
                    byte* data = basePtr + view.PointerOffset + dataStart;
                    foreach (var e in entries)
                    {
                        var t = empty(e.Shape, e.DType);
                        try
                        {
                            TensorBytes.CopyFrom(t, data + e.Begin, e.End - e.Begin);
                        }
                        catch
                        {
                            t.Dispose();
                            throw;
                        }
                        dict.Add(e.Name, t);
                    }
                }
                finally
                {
                    view.SafeMemoryMappedViewHandle.ReleasePointer();
                }
            }
            return dict;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not CheckpointException)
        {
            dict.Dispose();
            throw new CheckpointFormatException(path, $"cannot read the tensor data: {e.Message}", e);
        }
        catch
        {
            dict.Dispose();
            throw;
        }
    }

    /// <summary>Reads only the names, dtypes and shapes (and metadata), without the data.</summary>
    public static IReadOnlyList<(string Name, ScalarType DType, long[] Shape)> ReadIndex(string path) =>
        ReadHeader(path).Entries.Select(e => (e.Name, e.DType, e.Shape)).ToArray();

    /// <summary>Reads only the <c>__metadata__</c> strings, with the header checked as <see cref="Read"/> checks it.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => ReadHeader(path).Metadata;

    private static (List<Entry> Entries, Dictionary<string, string> Metadata, long DataStart, long FileLength) ReadHeader(string path)
    {
        long fileLength;
        byte[] header;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            fileLength = fs.Length;
            if (fileLength < 8)
                throw new CheckpointFormatException(path, $"not a safetensors file: {fileLength} bytes is too short for the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            fs.ReadExactly(lengthBytes);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (headerLength > (ulong)(fileLength - 8))
                throw new CheckpointFormatException(path, $"the header claims {headerLength} bytes but the file has only {fileLength - 8} after the length field: the file is truncated or not safetensors");
            if (headerLength > MaxHeaderBytes)
                throw new CheckpointFormatException(path, $"the header claims {headerLength} bytes, over the {MaxHeaderBytes} limit");
            if (headerLength < 2)
                throw new CheckpointFormatException(path, $"the header is {headerLength} bytes, too short for a JSON object");
            header = new byte[headerLength];
            fs.ReadExactly(header);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not CheckpointException)
        {
            throw new CheckpointFormatException(path, $"cannot read the file: {e.Message}", e);
        }
        long dataStart = 8 + header.Length;
        long dataLength = fileLength - dataStart;

        try
        {
            Utf8.GetCharCount(header);
        }
        catch (DecoderFallbackException)
        {
            throw new CheckpointFormatException(path, "the header is not valid UTF-8");
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"the header is not valid JSON ({e.Message})", e);
        }
        try
        {
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new CheckpointFormatException(path, $"the header is a JSON {doc.RootElement.ValueKind}, not an object");
                var entries = new List<Entry>();
                var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    if (!seen.Add(prop.Name)) throw new CheckpointFormatException(path, $"the header names '{prop.Name}' twice");
                    if (prop.Name == MetadataKey)
                    {
                        if (prop.Value.ValueKind != JsonValueKind.Object)
                            throw new CheckpointFormatException(path, $"{MetadataKey} must be an object of strings, is a {prop.Value.ValueKind}");
                        foreach (var m in prop.Value.EnumerateObject())
                        {
                            if (m.Value.ValueKind != JsonValueKind.String)
                                throw new CheckpointFormatException(path, $"{MetadataKey}['{m.Name}'] must be a string, is a {m.Value.ValueKind}");
                            metadata[m.Name] = m.Value.GetString()!;
                        }
                        continue;
                    }
                    entries.Add(ParseEntry(path, prop, dataLength));
                }
                CheckLayout(path, entries, dataLength);
                return (entries, metadata, dataStart, fileLength);
            }
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json refuses a string escape that is not valid Unicode (a lone surrogate) only when read.
            throw new CheckpointFormatException(path, $"the header holds a string that is not valid Unicode ({e.Message})", e);
        }
    }

    private static Entry ParseEntry(string path, JsonProperty prop, long dataLength)
    {
        string Where() => $"tensor '{prop.Name}'";
        if (prop.Value.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"{Where()}: its header entry is a {prop.Value.ValueKind}, not an object");
        if (!prop.Value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new CheckpointFormatException(path, $"{Where()}: no dtype string");
        var dtypeName = dtypeEl.GetString()!;
        var match = DTypes.FirstOrDefault(d => d.Name == dtypeName);
        if (match.Name is null)
            throw new CheckpointFormatException(path, $"{Where()}: dtype '{dtypeName}' is not supported (supported: {string.Join(", ", DTypes.Select(d => d.Name))})");
        var shape = ReadLongs(path, prop.Value, "shape", Where, maxCount: 64);
        var offsets = ReadLongs(path, prop.Value, "data_offsets", Where, maxCount: 2);
        if (offsets.Length != 2) throw new CheckpointFormatException(path, $"{Where()}: data_offsets must have two entries, has {offsets.Length}");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end || end > dataLength)
            throw new CheckpointFormatException(path, $"{Where()}: data_offsets [{begin}, {end}) lie outside the {dataLength} data bytes: the file is truncated or corrupt");
        long numel = TensorBytes.Numel(shape);
        int elem = TensorBytes.ElementSize(match.Type);
        if (numel < 0 || numel > (end - begin) / elem || numel * elem != end - begin)
            throw new CheckpointFormatException(path, $"{Where()}: shape [{string.Join(", ", shape)}] of {dtypeName} needs {(numel < 0 ? "an impossible number of" : (numel * elem).ToString())} bytes, but data_offsets give {end - begin}");
        return new Entry(prop.Name, match.Type, shape, begin, end);
    }

    private static long[] ReadLongs(string path, JsonElement obj, string field, Func<string> where, int maxCount)
    {
        if (!obj.TryGetProperty(field, out var el) || el.ValueKind != JsonValueKind.Array)
            throw new CheckpointFormatException(path, $"{where()}: no {field} array");
        if (el.GetArrayLength() > maxCount)
            throw new CheckpointFormatException(path, $"{where()}: {field} has {el.GetArrayLength()} entries, at most {maxCount} make sense");
        var values = new long[el.GetArrayLength()];
        int i = 0;
        foreach (var v in el.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x) || x < 0)
                throw new CheckpointFormatException(path, $"{where()}: {field}[{i}] is not a non-negative integer ({v.GetRawText()})");
            values[i++] = x;
        }
        return values;
    }

    /// <summary>The data section must be exactly covered by the tensors, without overlaps or holes
    /// (as the reference implementation requires).</summary>
    private static void CheckLayout(string path, List<Entry> entries, long dataLength)
    {
        long expected = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expected)
                throw new CheckpointFormatException(path, e.Begin < expected
                    ? $"tensor '{e.Name}' at bytes [{e.Begin}, {e.End}) overlaps the previous tensor"
                    : $"tensor '{e.Name}' starts at byte {e.Begin}, leaving a hole after byte {expected}");
            expected = e.End;
        }
        if (expected != dataLength)
            throw new CheckpointFormatException(path, $"the tensors cover {expected} data bytes but the file has {dataLength}: trailing garbage or a corrupt header");
    }

    /// <summary>
    /// Writes tensors (any device; written as stored, little-endian) and string metadata. The file is
    /// written under a temporary name and renamed when complete, so a crash never leaves half a file.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        TensorBytes.EnsureLittleEndianHost();
        var list = tensors.ToList();
        var header = BuildHeader(list, metadata);
        AtomicFile.Write(path, fs =>
        {
            Span<byte> length = stackalloc byte[8];
            BitConverter.TryWriteBytes(length, (ulong)header.Length);
            fs.Write(length);
            fs.Write(header);
            foreach (var (_, t) in list) TensorBytes.WriteTo(t, fs);
        });
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, t) in tensors)
            {
                if (name == MetadataKey || !names.Add(name)) throw new ArgumentException($"tensor name '{name}' is reserved or repeated");
                var dtype = DTypes.FirstOrDefault(d => d.Type == t.dtype);
                if (dtype.Name is null) throw new NotSupportedException($"tensor '{name}': dtype {t.dtype} cannot be stored in safetensors");
                long bytes = t.numel() * TensorBytes.ElementSize(t.dtype);
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.Name);
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    internal static bool LooksLikeSafeTensors(ReadOnlySpan<byte> head, long fileLength) =>
        head.Length >= 9 && BitConverter.ToUInt64(head) is var n && n <= (ulong)(fileLength - 8) && head[8] == (byte)'{';

    private static readonly Encoding Utf8 = new UTF8Encoding(false, true);
}
