using System.Security.Cryptography;
using System.Text;

namespace TransferSharp.Weights;

/// <summary>
/// Where downloaded checkpoints live, and how they get there. The layout is readable:
/// <c>ROOT/weights/torchvision/resnet50-0676ba61.pth</c>,
/// <c>ROOT/weights/huggingface/timm/resnet50.a1h_in1k/model.safetensors</c>,
/// <c>ROOT/weights/github/…</c>, <c>ROOT/weights/HOST/…</c> for anything else; lock files are kept
/// apart in <c>ROOT/locks</c>. A file is in the cache only when complete and verified.
/// </summary>
public sealed class WeightCache
{
    private static readonly DownloadOptions Defaults = new();
    private static readonly Lazy<HttpClient> SharedClient = new(() => HttpDownloader.CreateClient(Defaults));
    private readonly HttpClient _client;

    /// <summary>A cache at <paramref name="root"/> (default <see cref="DefaultRoot"/>), offline or not
    /// (default <see cref="OfflineFromEnvironment"/>).</summary>
    public WeightCache(string? root = null, bool? offline = null, DownloadOptions? options = null)
    {
        Root = Path.GetFullPath(root ?? DefaultRoot);
        Offline = offline ?? OfflineFromEnvironment;
        Options = options ?? new DownloadOptions();
        // Connections are pooled in one client; only another connect timeout needs a client of its own.
        _client = Options.ConnectTimeout == Defaults.ConnectTimeout ? SharedClient.Value : HttpDownloader.CreateClient(Options);
    }

    /// <summary>The cache as the environment configures it (TRANSFERSHARP_HOME, TRANSFERSHARP_OFFLINE).</summary>
    public static WeightCache FromEnvironment() => new();

    /// <summary>$TRANSFERSHARP_HOME, else ~/.cache/transfersharp.</summary>
    public static string DefaultRoot =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_HOME") is { Length: > 0 } home ? Path.GetFullPath(home)
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "transfersharp");

    /// <summary>True when TRANSFERSHARP_OFFLINE is 1/true/yes: never touch the network.</summary>
    public static bool OfflineFromEnvironment =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_OFFLINE") is { } v && v.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";

    /// <summary>The cache directory.</summary>
    public string Root { get; }

    /// <summary>When true, nothing is downloaded: a file not in the cache is an <see cref="OfflineException"/>.</summary>
    public bool Offline { get; }

    /// <summary>Retry, timeout and lock settings.</summary>
    public DownloadOptions Options { get; }

    /// <summary>Where the file for a URL is (or would be) cached.</summary>
    public string PathFor(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) throw new ArgumentException($"'{url}' is not an absolute URL", nameof(url));
        var segments = uri.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToList();
        var host = uri.Host.ToLowerInvariant();
        List<string> parts;
        if (host == "download.pytorch.org" && segments.Count > 0) parts = ["torchvision", segments[^1]];
        else if (host == "huggingface.co" && segments.Count >= 5 && segments[2] == "resolve")
            parts = ["huggingface", segments[0], segments[1], .. segments.Skip(4)]; // org/repo/resolve/revision/path
        else if (host == "github.com" && segments.Count >= 6 && segments[2] == "releases" && segments[3] == "download")
            parts = ["github", segments[0], segments[1], segments[^1]];
        else parts = [uri.IsDefaultPort ? host : $"{host}_{uri.Port}", .. segments];
        if (parts.Count == 1) parts.Add("index");
        return Path.Combine([Root, "weights", .. parts.Select(Sanitize)]);
    }

    private string LockPathFor(string destination)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(destination)))[..16];
        return Path.Combine(Root, "locks", $"{Path.GetFileName(destination)}.{hash}.lock");
    }

    private static string Sanitize(string segment)
    {
        var chars = segment.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray();
        var s = new string(chars);
        return s is "." or ".." or "" ? "_" : s;
    }

    /// <summary>The cached file for a tag (its bundled file, or the first of its URLs already downloaded), or null; for a
    /// <see cref="WeightKind.TextEncoder"/>, its model folder once every file is there.</summary>
    public string? TryGetCached(WeightTag tag)
    {
        if (tag.LocalFile is not null) return tag.LocalFile();
        if (tag.Kind == WeightKind.TextEncoder) return tag.Files.All(f => File.Exists(PathFor(f.Url))) ? FolderOf(tag) : null;
        return tag.Files.Select(f => PathFor(f.Url)).FirstOrDefault(File.Exists);
    }

    /// <summary>The folder a text encoder's files land in: each file's cache path without its <see cref="WeightFile.Path"/>
    /// (for a hub URL, <c>weights/huggingface/ORG/REPO/</c>), the same for all of them.</summary>
    private string FolderOf(WeightTag tag)
    {
        string? folder = null;
        foreach (var file in tag.Files)
        {
            if (file.Path is not { Length: > 0 } relative) throw new ArgumentException($"weights {tag.Name}: the file {file.Url} has no place in the model folder (WeightFile.Path)", nameof(tag));
            var path = PathFor(file.Url);
            var suffix = Path.Combine(relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Sanitize).ToArray());
            if (!path.EndsWith(Path.DirectorySeparatorChar + suffix, StringComparison.Ordinal))
                throw new ArgumentException($"weights {tag.Name}: the URL {file.Url} does not end in the file's folder path {relative}", nameof(tag));
            var here = path[..^(suffix.Length + 1)];
            if (folder is not null && folder != here) throw new ArgumentException($"weights {tag.Name}: its files would land in two folders ({folder}, {here})", nameof(tag));
            folder = here;
        }
        return folder ?? throw new ArgumentException($"weights {tag.Name} list no files", nameof(tag));
    }

    /// <summary>
    /// The checkpoint file of a tag: its bundled file, the cached download, or a fresh download (from
    /// each of its URLs in turn until one succeeds).
    /// </summary>
    public async Task<string> GetAsync(WeightTag tag, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        if (tag.LocalFile is not null)
        {
            var local = tag.LocalFile();
            return File.Exists(local) || (tag.Kind == WeightKind.TextEncoder && Directory.Exists(local)) ? local : throw new FileNotFoundException($"weights {tag.Name}: the bundled file {local} does not exist", local);
        }
        if (TryGetCached(tag) is { } cached) return cached;
        if (tag.Files.Count == 0) throw new InvalidOperationException($"weights {tag.Name} have no download URL");
        if (tag.Kind == WeightKind.TextEncoder)
        {
            // Every file of the folder, each verified; a file already there is not fetched again.
            var folder = FolderOf(tag);
            foreach (var file in tag.Files) await DownloadAsync(file.Url, file.Sha256Prefix, progress, ct).ConfigureAwait(false);
            return folder;
        }
        if (Offline) throw new OfflineException(tag.Files[0].Url, PathFor(tag.Files[0].Url), tag.Files.Skip(1).Select(f => f.Url).ToList());
        var failures = new List<DownloadException>();
        foreach (var file in tag.Files)
        {
            try
            {
                return await DownloadAsync(file.Url, file.Sha256Prefix, progress, ct).ConfigureAwait(false);
            }
            catch (DownloadException e)
            {
                failures.Add(e);
            }
        }
        if (failures.Count == 1) throw failures[0];
        throw new DownloadException(tag.Files[0].Url, $"weights {tag.Name}: every source failed: "
            + string.Join(" | ", failures.Select(f => f.Message)), failures[^1].StatusCode, failures[0]);
    }

    /// <summary>
    /// Downloads a URL into the cache (if it is not there yet) and returns its path. The file appears
    /// only when complete and, when <paramref name="sha256Prefix"/> is given, verified.
    /// </summary>
    public async Task<string> DownloadAsync(string url, string? sha256Prefix = null, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        var destination = PathFor(url);
        if (File.Exists(destination)) return destination;
        if (Offline) throw new OfflineException(url, destination);
        await new HttpDownloader(_client, Options).DownloadAsync(url, destination, LockPathFor(destination), sha256Prefix, progress, ct).ConfigureAwait(false);
        return destination;
    }
}
