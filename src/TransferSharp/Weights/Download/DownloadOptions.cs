namespace TransferSharp.Weights;

/// <summary>Progress of one download, reported a few times a second and once at the end.</summary>
/// <param name="Url">What is being downloaded.</param>
/// <param name="BytesReceived">Bytes on disk so far (including a resumed part).</param>
/// <param name="TotalBytes">Size of the file, when the server says.</param>
/// <param name="BytesPerSecond">Average speed of the current attempt.</param>
/// <param name="Attempt">1 for the first try, more after retries.</param>
/// <param name="Completed">True for the last report, once every byte is there.</param>
public sealed record DownloadProgress(string Url, long BytesReceived, long? TotalBytes, double BytesPerSecond, int Attempt, bool Completed)
{
    /// <summary>Fraction done in [0, 1], when the size is known.</summary>
    public double? Fraction => TotalBytes is > 0 ? Math.Min(1.0, (double)BytesReceived / TotalBytes.Value) : null;
}

/// <summary>How downloads behave: retries, timeouts, locking.</summary>
public sealed record DownloadOptions
{
    /// <summary>Tries per URL for transient failures (timeouts, dropped connections, HTTP 5xx/408/429).</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Wait before the second try; doubled after each failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between tries.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time to establish a connection.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest silence from the server (for the response headers, or between two reads of the body).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait for another process that is downloading the same file.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Minimum interval between two progress reports.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(100);
}
