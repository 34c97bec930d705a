using System.Text.Json;
using TorchSharp;
using TransferSharp.Weights;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>
/// The one place model files and checkpoints touch the safetensors format; the Weights module's reader
/// and writer do the work (checked header, atomic writes).
/// </summary>
internal static class TensorFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Writes tensors and metadata (atomically: the Weights writer uses a temporary name and renames).</summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        // The writer copies raw bytes: hand it contiguous CPU tensors.
        var prepared = tensors.Select(t => (t.Name, Owned: t.Tensor.detach().cpu().contiguous())).ToList();
        try
        {
            SafeTensors.Write(path, prepared.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Owned)), metadata);
        }
        finally
        {
            foreach (var (_, t) in prepared) t.Dispose();
        }
    }

    /// <summary>Reads every tensor (in file order; the caller owns them) and the metadata; every field is checked first.</summary>
    public static (List<(string Name, Tensor Tensor)> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        using var dict = SafeTensors.Read(path);
        var names = dict.Keys.ToList();
        var tensors = names.Select(n => (n, dict.Take(n))).ToList();
        return (tensors, dict.Metadata);
    }

    /// <summary>Reads only the header's string metadata (cheap; used to recognise model files).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (fs.Length < 8) throw new ModelFileException(path, $"not a safetensors file: {fs.Length} bytes is too short");
        Span<byte> lengthBytes = stackalloc byte[8];
        fs.ReadExactly(lengthBytes);
        ulong headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength == 0 || headerLength > (ulong)Math.Min(MaxHeaderBytes, fs.Length - 8))
            throw new ModelFileException(path, $"not a safetensors file: header length {headerLength} does not fit the file ({fs.Length} bytes)");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        try
        {
            using var doc = JsonDocument.Parse(header);
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("__metadata__", out var meta) && meta.ValueKind == JsonValueKind.Object)
                foreach (var m in meta.EnumerateObject()) result[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
            return result;
        }
        catch (JsonException e)
        {
            throw new ModelFileException(path, $"the safetensors header is not valid JSON: {e.Message}", e);
        }
    }
}
