using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace TransferSharp.Weights;

/// <summary>
/// Downloads one URL to one path, safely: into <c>path.partial</c>, resumed with an HTTP Range request
/// after a dropped connection (restarting when the server ignores Range), retried with exponential
/// backoff on transient failures only, checked against a known SHA-256 prefix, and renamed to
/// <c>path</c> only when complete and verified. An OS lock on a lock file serialises processes that
/// download the same file; the later one waits and then finds the finished file.
/// </summary>
internal sealed class HttpDownloader(HttpClient client, DownloadOptions options)
{
    private static readonly string UserAgent = $"TransferSharp/{typeof(HttpDownloader).Assembly.GetName().Version?.ToString(3) ?? "0"}";

    public static HttpClient CreateClient(DownloadOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = true, // Hugging Face "resolve" URLs redirect to a CDN
            MaxAutomaticRedirections = 10,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>A failure worth retrying.</summary>
    private sealed class TransientException(string message, int? status = null, Exception? inner = null) : Exception(message, inner)
    {
        public int? Status { get; } = status;
    }

    public async Task DownloadAsync(string url, string destination, string lockPath, string? sha256Prefix,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        CheckScheme(url);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        SweepStaleLocks(Path.GetDirectoryName(lockPath)!);
        using var fileLock = await AcquireLockAsync(lockPath, ct).ConfigureAwait(false);
        try
        {
            if (File.Exists(destination)) return; // another process finished it while we waited
            await DownloadLockedAsync(url, destination, sha256Prefix, progress, ct).ConfigureAwait(false);
        }
        finally
        {
            // Unlinked while still held: a process waiting for it opens a new file, finds the download done (or
            // failed) and goes on; no zero-byte lock stays behind.
            TryDelete(lockPath);
        }
    }

    private async Task DownloadLockedAsync(string url, string destination, string? sha256Prefix, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var partial = destination + ".partial";
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await TransferAsync(url, partial, destination, attempt, progress, ct).ConfigureAwait(false);
                break;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw new DownloadCancelledException(url, partial, ct);
            }
            catch (TransientException) when (attempt < options.MaxAttempts)
            {
                await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
            }
            catch (TransientException e)
            {
                throw new DownloadException(url, $"{url}: download failed after {attempt} attempts; last error: {e.Message}. "
                    + $"The part received so far is kept in {partial} and the next try resumes from it.", e.Status, e);
            }
            catch (DownloadException)
            {
                TryDelete(partial);
                throw;
            }
        }

        if (sha256Prefix is { Length: > 0 })
        {
            var actual = await Sha256Async(partial, ct).ConfigureAwait(false);
            if (!actual.StartsWith(sha256Prefix, StringComparison.OrdinalIgnoreCase))
            {
                TryDelete(partial);
                throw new ChecksumMismatchException(url, sha256Prefix.ToLowerInvariant(), actual);
            }
        }
        File.Move(partial, destination, overwrite: true);
    }

    private TimeSpan Backoff(int failedAttempts)
    {
        double ms = options.InitialBackoff.TotalMilliseconds * Math.Pow(2, failedAttempts - 1);
        return TimeSpan.FromMilliseconds(Math.Min(ms, options.MaxBackoff.TotalMilliseconds));
    }

    private static void CheckScheme(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
            throw new DownloadException(url, $"'{url}' is not an absolute URL");
        if (uri.Scheme == Uri.UriSchemeHttps) return;
        if (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback) return; // local mirrors and tests
        throw new DownloadException(url, $"{url}: only HTTPS downloads are allowed (plain HTTP only from this machine)");
    }

    /// <summary>Removes lock files left by killed processes: a lock nobody holds can be taken, and is then unlinked
    /// while held (as a finished download does), so a live download's lock is never touched.</summary>
    internal static int SweepStaleLocks(string lockDir)
    {
        int removed = 0;
        foreach (var path in Directory.EnumerateFiles(lockDir, "*.lock"))
        {
            try
            {
                using var held = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1);
                if (held.Length != 0) continue; // not one of ours: ours are always empty
                File.Delete(path);
                removed++;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    private async Task<FileStream> AcquireLockAsync(string lockPath, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // FileShare.None takes an OS lock (flock on Unix, a share lock on Windows) held until disposed.
                var held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                if (File.Exists(lockPath)) return held;
                held.Dispose(); // its holder finished and unlinked it between our open and lock: take the new one
                continue;
            }
            catch (IOException) when (deadline.Elapsed < options.LockTimeout)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new IOException($"another process has held the download lock {lockPath} for over {options.LockTimeout}; "
                    + "if no download is running, delete that file", e);
            }
        }
    }

    private async Task TransferAsync(string url, string partial, string destination, int attempt, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        long existing = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.UserAgent.ParseAdd(UserAgent);
        if (existing > 0) request.Headers.Range = new RangeHeaderValue(existing, null);

        HttpResponseMessage response;
        using (var headerTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            headerTimeout.CancelAfter(options.ConnectTimeout + options.ReadTimeout);
            try
            {
                response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headerTimeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new TransientException("the server did not answer in time", null, e);
            }
            catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.NameResolutionError)
            {
                // Usually no network at all: retrying would only make the user wait.
                throw new DownloadException(url, $"{url}: cannot resolve {new Uri(url).Host} ({e.Message}); is this machine offline? "
                    + $"Download the file elsewhere and place it at {destination}, or set TRANSFERSHARP_OFFLINE=1 to fail at once.", null, e);
            }
            catch (HttpRequestException e)
            {
                throw new TransientException($"request failed ({e.Message})", null, e);
            }
        }
        using (response)
        {
            int status = (int)response.StatusCode;
            bool append;
            long? total;
            switch (status)
            {
                case 200:
                    append = false; // a fresh download, or a server that ignored Range: start over
                    total = response.Content.Headers.ContentLength;
                    break;
                case 206:
                    var range = response.Content.Headers.ContentRange;
                    if (range?.From != existing)
                    {
                        TryDelete(partial);
                        throw new TransientException($"the server resumed at byte {range?.From?.ToString() ?? "?"} instead of {existing}; restarting", status);
                    }
                    append = true;
                    total = range.Length;
                    break;
                case 416:
                    if (response.Content.Headers.ContentRange?.Length is long size && size == existing)
                    {
                        Report(progress, url, existing, size, 0, attempt, completed: true);
                        return; // the partial file was already complete
                    }
                    TryDelete(partial);
                    throw new TransientException("the server rejected the resume range; restarting", status);
                case 408 or 429 or >= 500:
                    throw new TransientException($"HTTP {status} {response.ReasonPhrase}", status);
                default:
                    throw new DownloadException(url, $"{url}: HTTP {status} {response.ReasonPhrase}"
                        + (status is 401 or 403 ? " (access denied: the file may have moved or need authentication)" : status is 404 or 410 ? " (not found: the URL may have changed)" : ""), status);
            }

            Stream body;
            try
            {
                body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new TransientException($"connection lost ({e.Message})", status, e);
            }
            await using (body.ConfigureAwait(false))
            await using (var file = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                long received = append ? existing : 0, thisAttempt = 0;
                var clock = Stopwatch.StartNew();
                var lastReport = TimeSpan.Zero;
                var buffer = new byte[1 << 16];
                while (true)
                {
                    int n;
                    using (var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                    {
                        readTimeout.CancelAfter(options.ReadTimeout);
                        try
                        {
                            n = await body.ReadAsync(buffer, readTimeout.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                        {
                            throw new TransientException($"the server stalled after {received} bytes", status, e);
                        }
                        catch (Exception e) when (e is IOException or HttpRequestException)
                        {
                            await file.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                            throw new TransientException($"connection lost after {received} bytes ({e.Message})", status, e);
                        }
                    }
                    if (n == 0) break;
                    await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    received += n;
                    thisAttempt += n;
                    if (clock.Elapsed - lastReport >= options.ProgressInterval)
                    {
                        lastReport = clock.Elapsed;
                        Report(progress, url, received, total, thisAttempt / Math.Max(1e-3, clock.Elapsed.TotalSeconds), attempt, completed: false);
                    }
                }
                await file.FlushAsync(ct).ConfigureAwait(false);
                if (total is long expected && received != expected)
                    throw new TransientException($"the connection closed after {received} of {expected} bytes", status);
                Report(progress, url, received, total ?? received, thisAttempt / Math.Max(1e-3, clock.Elapsed.TotalSeconds), attempt, completed: true);
            }
        }
    }

    private static void Report(IProgress<DownloadProgress>? progress, string url, long received, long? total, double speed, int attempt, bool completed) =>
        progress?.Report(new DownloadProgress(url, received, total, speed, attempt, completed));

    internal static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        var hash = await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
