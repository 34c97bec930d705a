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
    /// <summary>Writes tensors and metadata (atomically: the Weights writer uses a temporary name and renames).</summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        // The writer copies raw bytes: hand it contiguous CPU tensors.
        // Made in a scope, so the detached and moved intermediates are disposed here rather than by the finalizer thread
        // (../shared/notes/torchsharp-memory.md); a checkpoint writes every epoch.
        List<(string Name, Tensor Owned)> prepared;
        using (NewDisposeScope())
            prepared = tensors.Select(t => (t.Name, Owned: t.Tensor.detach().cpu().contiguous().DetachFromDisposeScope())).ToList();
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

    /// <summary>Reads only the header's string metadata (cheap; used to recognise model files), checked as
    /// <see cref="Read"/> checks it (UTF-8, JSON, layout).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => SafeTensors.ReadMetadata(path);
}
