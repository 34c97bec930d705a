namespace TransferSharp.Weights;

/// <summary>Reads a checkpoint file of any supported format into a <see cref="StateDict"/>.</summary>
public static class Checkpoint
{
    /// <summary>File extensions recognised as checkpoints.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".pth.tar"];

    /// <summary>True when the name ends in a checkpoint extension.</summary>
    public static bool HasCheckpointExtension(string path) =>
        Extensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Reads a <c>.safetensors</c> file or a PyTorch <c>.pth</c>/<c>.pt</c>/<c>.bin</c> checkpoint (zip or
    /// legacy), deciding by content, not by name. Throws <see cref="CheckpointException"/> (naming the file
    /// and the problem) for corrupt, truncated or unsafe files, <see cref="FileNotFoundException"/> when
    /// there is no file.
    /// </summary>
    public static StateDict Read(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"no checkpoint file at {full}", full);
        var (head, length) = ReadHead(full, 16);
        if (SafeTensors.LooksLikeSafeTensors(head, length) || full.EndsWith(SafeTensors.Extension, StringComparison.OrdinalIgnoreCase))
            return SafeTensors.Read(full);
        if (full.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new CheckpointFormatException(full, "ONNX files are model graphs, not checkpoints; import them as models instead");
        return TorchCheckpoint.Read(full);
    }

    /// <summary>The first bytes of a file (fewer if it is shorter) and its length.</summary>
    internal static (byte[] Head, long Length) ReadHead(string path, int count)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            var head = new byte[(int)Math.Min(count, fs.Length)];
            fs.ReadExactly(head);
            return (head, fs.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not FileNotFoundException)
        {
            throw new CheckpointFormatException(path, $"cannot read the file: {e.Message}", e);
        }
    }
}
