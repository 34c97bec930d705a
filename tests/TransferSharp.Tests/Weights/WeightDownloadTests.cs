using System.Security.Cryptography;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Weights;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Weights;

/// <summary>Downloads against a real HTTP server on 127.0.0.1 that misbehaves on purpose.</summary>
[Trait("Category", "Weights")]
public sealed class WeightDownloadTests : IDisposable
{
    private static readonly DownloadOptions Fast = new()
    {
        InitialBackoff = TimeSpan.FromMilliseconds(20),
        MaxBackoff = TimeSpan.FromMilliseconds(100),
        ReadTimeout = TimeSpan.FromSeconds(10),
        ProgressInterval = TimeSpan.Zero,
    };

    private readonly TestHttpServer _server = new();
    private readonly string _root = Paths.NewTempDir();
    private readonly byte[] _body = File.ReadAllBytes(WeightFixtures.File("tiny_densenet.pth"));

    public void Dispose()
    {
        _server.Dispose();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private WeightCache Cache(bool offline = false) => new(_root, offline, Fast);

    private string Sha => Convert.ToHexStringLower(SHA256.HashData(_body));

    /// <summary>Files in the cache's weights tree (lock files live elsewhere).</summary>
    private string[] CachedFiles() =>
        Directory.Exists(Path.Combine(_root, "weights")) ? Directory.GetFiles(Path.Combine(_root, "weights"), "*", SearchOption.AllDirectories) : [];

    private sealed class Recorder : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Fact]
    public async Task A_good_download_is_verified_cached_and_reported()
    {
        _server.Add("/models/tiny.pth", new TestHttpServer.Route { Body = _body });
        var url = _server.Url("/models/tiny.pth");
        var progress = new Recorder();
        var path = await Cache().DownloadAsync(url, Sha[..8], progress);

        Assert.Equal(_body, File.ReadAllBytes(path));
        Assert.StartsWith(Path.Combine(_root, "weights", $"127.0.0.1_{_server.Port}"), path);
        Assert.Equal([path], CachedFiles());
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "locks"))); // the lock is removed, not left as a zero-byte file
        var last = progress.Reports[^1];
        Assert.True(last.Completed);
        Assert.Equal(_body.Length, last.BytesReceived);
        Assert.Equal(_body.Length, last.TotalBytes);
        Assert.Equal(1.0, last.Fraction);
        Assert.True(progress.Reports.Count >= 2);

        // A second request is served from the cache.
        Assert.Equal(path, await Cache().DownloadAsync(url, Sha[..8]));
        Assert.Equal(1, _server.RequestCount("/models/tiny.pth"));
    }

    [Fact]
    public async Task An_interrupted_download_resumes_with_a_range_request()
    {
        int half = _body.Length / 2;
        var route = new TestHttpServer.Route { Body = _body };
        route.CutAfter.Enqueue(half);
        _server.Add("/cut.pth", route);
        var path = await Cache().DownloadAsync(_server.Url("/cut.pth"), Sha);

        Assert.Equal(_body, File.ReadAllBytes(path));
        var requests = _server.Requests.Where(r => r.Path == "/cut.pth").ToList();
        Assert.Equal(2, requests.Count);
        Assert.Null(requests[0].RangeStart);
        // The server drops the connection with a reset after `half` bytes; bytes still unread in the client's socket
        // buffer are lost with it (under load that is often everything after the first 8 KB), so the resume starts at
        // what reached the file: after the start, at most at the cut.
        Assert.InRange(requests[1].RangeStart!.Value, 1, half);
        Assert.Equal([path], CachedFiles());
    }

    [Fact]
    public async Task A_server_that_ignores_range_makes_the_download_start_over_correctly()
    {
        var route = new TestHttpServer.Route { Body = _body, HonourRange = false };
        route.CutAfter.Enqueue(_body.Length / 3);
        _server.Add("/norange.pth", route);
        var path = await Cache().DownloadAsync(_server.Url("/norange.pth"), Sha);
        Assert.Equal(_body, File.ReadAllBytes(path));
        Assert.Equal(2, _server.RequestCount("/norange.pth"));
    }

    [Fact]
    public async Task A_checksum_mismatch_leaves_nothing_in_the_cache()
    {
        _server.Add("/tampered.pth", new TestHttpServer.Route { Body = _body });
        var url = _server.Url("/tampered.pth");
        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(() => Cache().DownloadAsync(url, "deadbeef"));
        Assert.Equal("deadbeef", e.Expected);
        Assert.Equal(Sha, e.Actual);
        Assert.Contains("deadbeef", e.Message);
        Assert.Contains(Sha, e.Message);
        Assert.Contains(url, e.Message);
        Assert.Empty(CachedFiles()); // not the file, not a .partial
    }

    [Fact]
    public async Task Not_found_fails_at_once_without_retrying()
    {
        _server.Add("/gone.pth", new TestHttpServer.Route { FixedStatus = 404 });
        var url = _server.Url("/gone.pth");
        var e = await Assert.ThrowsAsync<DownloadException>(() => Cache().DownloadAsync(url));
        Assert.Equal(404, e.StatusCode);
        Assert.Contains(url, e.Message);
        Assert.Contains("404", e.Message);
        Assert.Equal(1, _server.RequestCount("/gone.pth"));
        Assert.Empty(CachedFiles());

        _server.Add("/forbidden.pth", new TestHttpServer.Route { FixedStatus = 403 });
        var e2 = await Assert.ThrowsAsync<DownloadException>(() => Cache().DownloadAsync(_server.Url("/forbidden.pth")));
        Assert.Equal(403, e2.StatusCode);
        Assert.Equal(1, _server.RequestCount("/forbidden.pth"));
    }

    [Fact]
    public async Task Transient_server_errors_are_retried_until_success()
    {
        var route = new TestHttpServer.Route { Body = _body };
        route.FailFirst.Enqueue(500);
        route.FailFirst.Enqueue(503);
        _server.Add("/flaky.pth", route);
        var path = await Cache().DownloadAsync(_server.Url("/flaky.pth"), Sha);
        Assert.Equal(_body, File.ReadAllBytes(path));
        Assert.Equal(3, _server.RequestCount("/flaky.pth"));
    }

    [Fact]
    public async Task Persistent_server_errors_give_up_after_the_configured_attempts()
    {
        _server.Add("/down.pth", new TestHttpServer.Route { FixedStatus = 502 });
        var cache = new WeightCache(_root, false, Fast with { MaxAttempts = 3 });
        var e = await Assert.ThrowsAsync<DownloadException>(() => cache.DownloadAsync(_server.Url("/down.pth")));
        Assert.Contains("3 attempts", e.Message);
        Assert.Equal(3, _server.RequestCount("/down.pth"));
    }

    [Fact]
    public async Task Offline_mode_names_the_url_and_the_cache_path_and_sends_nothing()
    {
        _server.Add("/offline.pth", new TestHttpServer.Route { Body = _body });
        var url = _server.Url("/offline.pth");
        var cache = Cache(offline: true);
        var e = await Assert.ThrowsAsync<OfflineException>(() => cache.DownloadAsync(url));
        Assert.Equal(url, e.Url);
        Assert.Equal(cache.PathFor(url), e.CachePath);
        Assert.Contains(url, e.Message);
        Assert.Contains(cache.PathFor(url), e.Message);
        Assert.Contains("TRANSFERSHARP_OFFLINE", e.Message);
        Assert.Empty(_server.Requests);

        // A file placed there by hand is used.
        Directory.CreateDirectory(Path.GetDirectoryName(e.CachePath)!);
        File.WriteAllBytes(e.CachePath, _body);
        Assert.Equal(e.CachePath, await cache.DownloadAsync(url));

        var old = Environment.GetEnvironmentVariable("TRANSFERSHARP_OFFLINE");
        try
        {
            Environment.SetEnvironmentVariable("TRANSFERSHARP_OFFLINE", "1");
            Assert.True(WeightCache.FromEnvironment().Offline);
        }
        finally
        {
            Environment.SetEnvironmentVariable("TRANSFERSHARP_OFFLINE", old);
        }
    }

    [Fact]
    public async Task Two_concurrent_downloads_of_one_file_make_one_valid_file()
    {
        _server.Add("/shared.pth", new TestHttpServer.Route { Body = _body, ChunkSize = 2048, ChunkDelay = TimeSpan.FromMilliseconds(10) });
        var url = _server.Url("/shared.pth");
        var first = Task.Run(() => new WeightCache(_root, false, Fast).DownloadAsync(url, Sha));
        var second = Task.Run(() => new WeightCache(_root, false, Fast).DownloadAsync(url, Sha));
        var paths = await Task.WhenAll(first, second);
        Assert.Equal(paths[0], paths[1]);
        Assert.Equal(_body, File.ReadAllBytes(paths[0]));
        Assert.Equal(1, _server.RequestCount("/shared.pth")); // the second waited for the first, then found the file
        Assert.Equal([paths[0]], CachedFiles());
    }

    [Fact]
    public async Task Cancelling_leaves_no_file_and_the_next_download_resumes()
    {
        _server.Add("/slow.pth", new TestHttpServer.Route { Body = _body, ChunkSize = 1024, ChunkDelay = TimeSpan.FromMilliseconds(5) });
        var url = _server.Url("/slow.pth");
        using var cts = new CancellationTokenSource();
        var progress = new Recorder();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Cache().DownloadAsync(url, Sha, new Both(progress, cts), cts.Token));
        var cache = Cache();
        Assert.False(File.Exists(cache.PathFor(url)));
        var path = await cache.DownloadAsync(url, Sha);
        Assert.Equal(_body, File.ReadAllBytes(path));
        var ranges = _server.Requests.Where(r => r.Path == "/slow.pth").Select(r => r.RangeStart).ToList();
        Assert.Equal(2, ranges.Count);
        Assert.True(ranges[1] > 0, "the second download did not resume");
    }

    private sealed class Both(Recorder recorder, CancellationTokenSource cts) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            recorder.Report(value);
            if (value.BytesReceived > 4096) cts.Cancel();
        }
    }

    [Fact]
    public async Task Redirects_are_followed_as_hugging_face_resolve_urls_need()
    {
        _server.Add("/timm/tiny/resolve/main/model.pth", new TestHttpServer.Route { RedirectTo = _server.Url("/cdn/blob") });
        _server.Add("/cdn/blob", new TestHttpServer.Route { Body = _body });
        var path = await Cache().DownloadAsync(_server.Url("/timm/tiny/resolve/main/model.pth"), Sha);
        Assert.Equal(_body, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Plain_http_is_refused_except_from_this_machine()
    {
        var e = await Assert.ThrowsAsync<DownloadException>(() => Cache().DownloadAsync("http://example.com/w.pth"));
        Assert.Contains("HTTPS", e.Message);
    }

    [Fact]
    public void Cache_layout_is_readable()
    {
        var cache = new WeightCache("/cache");
        Assert.Equal("/cache/weights/torchvision/resnet50-0676ba61.pth", cache.PathFor("https://download.pytorch.org/models/resnet50-0676ba61.pth"));
        Assert.Equal("/cache/weights/huggingface/timm/resnet50.a1h_in1k/model.safetensors",
            cache.PathFor("https://huggingface.co/timm/resnet50.a1h_in1k/resolve/main/model.safetensors"));
        Assert.Equal("/cache/weights/github/rwightman/pytorch-image-models/xception-43020ad28.pth",
            cache.PathFor("https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth"));
        Assert.Equal("/cache/weights/example.org_8443/some_dir/w_1.pth", cache.PathFor("https://example.org:8443/some%20dir/w:1.pth"));
    }

    [Fact]
    public void A_registered_tag_downloads_on_first_use_and_loads_with_its_preprocessing()
    {
        using var scope = NewDisposeScope();
        _server.Add("/tiny/tiny_densenet-" + Sha[..8] + ".pth", new TestHttpServer.Route { Body = _body });
        var tag = new WeightTag
        {
            Architecture = "tiny_densenet",
            Tag = "test_v1",
            Source = WeightSource.Local,
            Files = [new WeightFile(_server.Url("/tiny/tiny_densenet-" + Sha[..8] + ".pth"), Sha[..8])],
            Preprocessing = Preprocessing.ImageNet with { ResizeSize = 36, CropSize = 32 },
            NumClasses = 10,
            Labels = ClassLabels.Numbered(10),
        };
        WeightRegistry.Register(tag);
        try
        {
            using var model = WeightFixtures.TinyDenseNet();
            var progress = new Recorder();
            var loaded = PretrainedWeights.Load(model, "test_v1", new WeightLoadOptions { Cache = Cache() }, progress);
            Assert.Same(tag, loaded.Tag);
            Assert.Equal(32, loaded.Preprocessing.CropSize);
            Assert.Equal("class 3", loaded.Labels[3]);
            Assert.True(loaded.Report.HeadLoaded);
            Assert.True(progress.Reports[^1].Completed);
            double d = WeightFixtures.MaxAbsDiff(WeightFixtures.Logits(model), WeightFixtures.Expected.Logits);
            Assert.True(d < 1e-5, $"logits differ by {d}");

            // Offline, the cached file is enough; a gray model gets gray preprocessing.
            using var gray = WeightFixtures.TinyDenseNet(inChannels: 1);
            var again = PretrainedWeights.Load(gray, "tiny_densenet.test_v1", new WeightLoadOptions { Cache = Cache(offline: true) });
            Assert.Equal(1, again.Preprocessing.Channels);
            Assert.Single(again.Preprocessing.Mean);
            Assert.Equal(1, _server.RequestCount("/tiny/tiny_densenet-" + Sha[..8] + ".pth"));

            // A checkpoint path works the same way, and a wrong name lists what exists.
            using var other = WeightFixtures.TinyDenseNet();
            Assert.Null(PretrainedWeights.Load(other, WeightFixtures.File("tiny_densenet_legacy.pth")).Tag);
            Assert.Throws<FileNotFoundException>(() => PretrainedWeights.Load(other, "/no/such/file.safetensors"));
            using var resnet = TransferSharp.Vision.Zoo.ModelZoo.Create("resnet18", new TransferSharp.Vision.Zoo.ModelOptions { NumClasses = 2 });
            var unknown = Assert.Throws<UnknownWeightsException>(() => PretrainedWeights.Load(resnet, "nonsense"));
            Assert.Contains("IMAGENET1K_V1", unknown.Message);
        }
        finally
        {
            WeightRegistry.Unregister(tag.Name);
        }
    }
}
