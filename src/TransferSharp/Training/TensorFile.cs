using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>
/// The one place model files and checkpoints touch the safetensors format (8-byte little-endian header
/// length, JSON header with dtype/shape/data_offsets per tensor and string <c>__metadata__</c>, raw
/// little-endian data). Kept small and internal so it can delegate to the Weights reader/writer.
/// Writes go to a temporary name, are flushed, and renamed over the target: never half a file.
/// </summary>
internal static class TensorFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private const string MetadataKey = "__metadata__";

    private static readonly (string Name, ScalarType Type, int Size)[] DTypes =
    [
        ("F64", ScalarType.Float64, 8), ("F32", ScalarType.Float32, 4), ("F16", ScalarType.Float16, 2), ("BF16", ScalarType.BFloat16, 2),
        ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4), ("I16", ScalarType.Int16, 2), ("I8", ScalarType.Int8, 1),
        ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    ];

    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var header = new MemoryStream();
        var sizes = new long[tensors.Count];
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            w.WriteStartObject(MetadataKey);
            foreach (var (k, v) in metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < tensors.Count; i++)
            {
                var (name, t) = tensors[i];
                if (name == MetadataKey || !seen.Add(name)) throw new ArgumentException($"tensor name '{name}' is reserved or repeated");
                var d = DTypes.FirstOrDefault(x => x.Type == t.dtype);
                if (d.Name is null) throw new NotSupportedException($"tensor '{name}': dtype {t.dtype} cannot be stored in safetensors");
                sizes[i] = t.numel() * d.Size;
                w.WriteStartObject(name);
                w.WriteString("dtype", d.Name);
                w.WriteStartArray("shape");
                foreach (var s in t.shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + sizes[i]);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += sizes[i];
            }
            w.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');
        AtomicFile.Write(path, fs =>
        {
            Span<byte> length = stackalloc byte[8];
            BitConverter.TryWriteBytes(length, (ulong)header.Length);
            fs.Write(length);
            header.Position = 0;
            header.CopyTo(fs);
            for (int i = 0; i < tensors.Count; i++)
            {
                using var c = tensors[i].Tensor.detach().cpu().contiguous();
                if (sizes[i] == 0) continue;
                fs.Write(c.bytes);
            }
        });
    }

    /// <summary>Reads the metadata only (cheap: the header).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => ReadHeader(path).Metadata;

    /// <summary>Reads every tensor (in file order) and the metadata. Every field is checked first.</summary>
    public static (List<(string Name, Tensor Tensor)> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        var (entries, metadata, dataStart) = ReadHeader(path);
        var result = new List<(string, Tensor)>();
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            foreach (var (name, type, shape, begin, end) in entries)
            {
                var t = empty(shape, type);
                result.Add((name, t));
                if (end == begin) continue;
                var bytes = new byte[end - begin];
                fs.Position = dataStart + begin;
                fs.ReadExactly(bytes);
                t.bytes = bytes;
            }
            return (result, metadata);
        }
        catch
        {
            foreach (var (_, t) in result) t.Dispose();
            throw;
        }
    }

    private static (List<(string, ScalarType, long[], long, long)> Entries, Dictionary<string, string> Metadata, long DataStart) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = fs.Length;
        if (fileLength < 8) throw new ModelFileException(path, $"not a safetensors file: {fileLength} bytes is too short");
        Span<byte> lengthBytes = stackalloc byte[8];
        fs.ReadExactly(lengthBytes);
        ulong headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength == 0 || headerLength > (ulong)Math.Min(MaxHeaderBytes, fileLength - 8))
            throw new ModelFileException(path, $"not a safetensors file: header length {headerLength} does not fit the file ({fileLength} bytes)");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        var entries = new List<(string, ScalarType, long[], long, long)>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        long dataLength = fileLength - 8 - (long)headerLength;
        try
        {
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFileException(path, "the safetensors header is not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == MetadataKey)
                {
                    foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                var dtypeName = prop.Value.GetProperty("dtype").GetString();
                var dtype = DTypes.FirstOrDefault(d => d.Name == dtypeName);
                if (dtype.Name is null) throw new ModelFileException(path, $"tensor '{prop.Name}': unsupported dtype '{dtypeName}'");
                var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (shape.Any(s => s < 0) || offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                    throw new ModelFileException(path, $"tensor '{prop.Name}': bad shape or data offsets (data section is {dataLength} bytes)");
                long count = 1;
                foreach (var s in shape) count = checked(count * s);
                if (count * dtype.Size != offsets[1] - offsets[0])
                    throw new ModelFileException(path, $"tensor '{prop.Name}': shape [{string.Join(",", shape)}] of {dtypeName} needs {count * dtype.Size} bytes, offsets give {offsets[1] - offsets[0]}");
                entries.Add((prop.Name, dtype.Type, shape, offsets[0], offsets[1]));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new ModelFileException(path, $"the safetensors header is malformed: {e.Message}", e);
        }
        return (entries, metadata, 8 + (long)headerLength);
    }
}

/// <summary>Writes files under a temporary name in the same folder and renames them when complete.</summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, "." + Path.GetFileName(full) + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    public static void WriteText(string path, string text) => Write(path, fs =>
    {
        var bytes = new UTF8Encoding(false).GetBytes(text);
        fs.Write(bytes);
    });
}
