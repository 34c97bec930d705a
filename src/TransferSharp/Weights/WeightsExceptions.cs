namespace TransferSharp.Weights;

/// <summary>A checkpoint file cannot be used: it is corrupt, truncated, hostile or of an unknown format.
/// The message names the file and the problem.</summary>
public class CheckpointException : InvalidFileException
{
    /// <summary>Creates the exception.</summary>
    public CheckpointException(string filePath, string message, Exception? inner = null)
        : base(filePath, message, inner)
    {
    }
}

/// <summary>The file is truncated, corrupt, or not in the format its name or content claims.</summary>
public sealed class CheckpointFormatException : CheckpointException
{
    /// <summary>Creates the exception.</summary>
    public CheckpointFormatException(string filePath, string message, Exception? inner = null) : base(filePath, message, inner) { }
}

/// <summary>
/// A PyTorch pickle names something other than tensor storage and plain containers (for example
/// <c>os.system</c>): loading it with Python's pickle would run code. It was refused before anything ran.
/// </summary>
public sealed class UnsafeCheckpointException : CheckpointException
{
    /// <summary>Creates the exception for the global <paramref name="globalName"/> ("module.name").</summary>
    public UnsafeCheckpointException(string filePath, string globalName, string? detail = null)
        : base(filePath, $"the pickle references '{globalName}', which is not allowed in a weights-only checkpoint "
            + "(only tensor storages, ordered dicts and plain containers are). The file was refused and nothing in it was executed."
            + (detail is null ? "" : " " + detail)
            + " If you trust the file, load it in PyTorch and re-save just the tensors: torch.save(model.state_dict(), path) or safetensors.")
    {
        GlobalName = globalName;
    }

    /// <summary>The refused global, as "module.name".</summary>
    public string GlobalName { get; }
}

/// <summary>A download failed for good (not found, forbidden, retries exhausted).</summary>
public class DownloadException : TransferSharpException
{
    /// <summary>Creates the exception.</summary>
    public DownloadException(string url, string message, int? statusCode = null, Exception? inner = null)
        : base(message, inner)
    {
        Url = url;
        StatusCode = statusCode;
    }

    /// <summary>The URL that was requested.</summary>
    public string Url { get; }

    /// <summary>HTTP status code of the last response, if one came.</summary>
    public int? StatusCode { get; }
}

/// <summary>The downloaded file's SHA-256 does not match the known one; the download was deleted.</summary>
public sealed class ChecksumMismatchException : DownloadException
{
    /// <summary>Creates the exception.</summary>
    public ChecksumMismatchException(string url, string expectedPrefix, string actual)
        : base(url, $"{url}: SHA-256 mismatch: expected {expectedPrefix}…, got {actual}. The download was deleted; "
            + "the server may have sent a different or damaged file. Try again later, or check the URL.")
    {
        Expected = expectedPrefix;
        Actual = actual;
    }

    /// <summary>The expected hash (or its prefix), lowercase hex.</summary>
    public string Expected { get; }

    /// <summary>The hash of what was received, lowercase hex.</summary>
    public string Actual { get; }
}

/// <summary>A download was cancelled (Ctrl+C): what arrived is kept in <see cref="PartialPath"/> and the next try resumes from it.</summary>
public sealed class DownloadCancelledException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    public DownloadCancelledException(string url, string partialPath, CancellationToken token)
        : base($"the download of {url} was cancelled; the part received is kept in {partialPath} and the next try resumes from it", token)
    {
        Url = url;
        PartialPath = partialPath;
    }

    /// <summary>The URL being downloaded.</summary>
    public string Url { get; }

    /// <summary>Where the part received so far is kept.</summary>
    public string PartialPath { get; }
}

/// <summary>TRANSFERSHARP_OFFLINE is set and the file is not in the cache: nothing was downloaded.</summary>
public sealed class OfflineException : TransferSharpException
{
    /// <summary>Creates the exception.</summary>
    public OfflineException(string url, string cachePath, IReadOnlyList<string>? alternativeUrls = null)
        : base($"offline mode (TRANSFERSHARP_OFFLINE=1): the checkpoint is not in the cache and the network may not be used. "
            + $"It would be downloaded from {url} to {cachePath}. To use it offline, download it on a connected machine "
            + $"(for example: curl -L -o '{Path.GetFileName(cachePath)}' '{url}') and copy it to {cachePath}"
            + (alternativeUrls is { Count: > 0 } ? $" (alternative source: {string.Join(", ", alternativeUrls)})" : "")
            + ", or unset TRANSFERSHARP_OFFLINE.")
    {
        Url = url;
        CachePath = cachePath;
    }

    /// <summary>The URL the file would come from.</summary>
    public string Url { get; }

    /// <summary>Where the cache expects the file.</summary>
    public string CachePath { get; }
}

/// <summary>A weights name is neither a known tag for the architecture nor a file.</summary>
public sealed class UnknownWeightsException(string message) : TransferSharpException(message);
