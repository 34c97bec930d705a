using System.Numerics.Tensors;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Extensions.AI;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Preprocessing;
using Xunit;

namespace TransferSharp.Tests.Ecosystem;

/// <summary>The Microsoft.Extensions.AI generators, resolved from DI and driven through the abstraction only.</summary>
[Trait("Category", "EmbeddingGenerators")]
public class EmbeddingGeneratorTests
{
    private static string Fixture(string name)
    {
        var path = Path.Combine(Paths.EmbeddingFixtures, name);
        Assert.True(File.Exists(path), $"embedding fixture missing: {path} (set TRANSFERSHARP_EMBEDDINGS_DIR)");
        return path;
    }

    private static JsonElement Expected(string section) =>
        JsonDocument.Parse(File.ReadAllBytes(Fixture("expected.json"))).RootElement.GetProperty(section);

    private static IEmbeddingGenerator<string, Embedding<float>> Words(ServiceProvider provider) =>
        provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();

    private static ServiceProvider WordServices(string file, WordVectorEmbeddingOptions? options = null)
    {
        var services = new ServiceCollection();
        services.AddWordVectorEmbeddingGenerator(Fixture(file), options);
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task Mean_pooling_equals_fastText_sentence_vectors()
    {
        using var provider = WordServices("ft.bin");
        var generator = Words(provider);
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("TransferSharp", metadata.ProviderName);
        Assert.Equal("ft.bin", metadata.DefaultModelId);
        Assert.Equal(16, metadata.DefaultModelDimensions);

        var entries = Expected("fasttext_sentence_vectors").GetProperty("entries").EnumerateArray().ToArray();
        var embeddings = await generator.GenerateAsync(entries.Select(e => e.GetProperty("sentence").GetString()!));
        Assert.Equal(entries.Length, embeddings.Count);
        for (int i = 0; i < entries.Length; i++)
        {
            var expected = entries[i].GetProperty("vector").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            var actual = embeddings[i].Vector.ToArray();
            Assert.Equal("ft.bin", embeddings[i].ModelId);
            for (int j = 0; j < expected.Length; j++)
                Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-5f, $"sentence {i}, value {j}: {actual[j]} vs fastText {expected[j]}");
        }
    }

    [Fact]
    public async Task Unknown_words_get_fastText_subword_vectors()
    {
        using var provider = WordServices("ft.bin", new WordVectorEmbeddingOptions { UnitWordVectors = false });
        var generator = Words(provider);
        var oov = Expected("fasttext_word_vectors").GetProperty("entries").EnumerateArray().Where(e => !e.GetProperty("in_vocab").GetBoolean()).Take(4).ToArray();
        Assert.NotEmpty(oov);
        var embeddings = await generator.GenerateAsync(oov.Select(e => e.GetProperty("word").GetString()!));
        for (int i = 0; i < oov.Length; i++)
        {
            var expected = oov[i].GetProperty("vector").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            Assert.Equal(expected.Length, embeddings[i].Vector.Length);
            for (int j = 0; j < expected.Length; j++) Assert.Equal(expected[j], embeddings[i].Vector.Span[j], 5);
        }
    }

    [Fact]
    public async Task Sif_weights_frequent_words_down_and_rare_words_barely()
    {
        using var mean = WordServices("ft.bin");
        using var sif = WordServices("ft.bin", new WordVectorEmbeddingOptions { Pooling = SentencePooling.Sif });
        string[] texts = ["the", "computer", "the computer"];
        var m = await Words(mean).GenerateAsync(texts);
        var s = await Words(sif).GenerateAsync(texts);
        float Norm(Embedding<float> e) => TensorPrimitives.Norm(e.Vector.Span);
        // "the" is ~4% of the corpus: weight 1e-3 / (1e-3 + 0.04) ≈ 0.02. A rarer word keeps most of its length.
        Assert.True(Norm(s[0]) < 0.1f * Norm(m[0]), $"'the': SIF {Norm(s[0])} vs mean {Norm(m[0])}");
        Assert.True(Norm(s[1]) > 3 * Norm(s[0]), $"'computer' {Norm(s[1])} should outweigh 'the' {Norm(s[0])}");
        // In a sentence, SIF leans towards the rare word: closer to "computer" than the plain mean is.
        Assert.True(TensorPrimitives.CosineSimilarity(s[2].Vector.Span, m[1].Vector.Span) > TensorPrimitives.CosineSimilarity(m[2].Vector.Span, m[1].Vector.Span));
    }

    [Fact]
    public async Task Vectors_without_counts_use_their_frequency_order_and_skip_unknown_words()
    {
        using var provider = WordServices("w2v.txt", new WordVectorEmbeddingOptions { Pooling = SentencePooling.Sif, ModelId = "fortunes-w2v" });
        var generator = Words(provider);
        Assert.Equal("fortunes-w2v", generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelId);
        var e = await generator.GenerateAsync(["the", "qqqzzzxxy", ""]);
        Assert.Equal(32, e[0].Vector.Length);
        Assert.True(TensorPrimitives.Norm(e[0].Vector.Span) > 0);
        Assert.Equal(0f, TensorPrimitives.Norm(e[1].Vector.Span));
        Assert.Equal(0f, TensorPrimitives.Norm(e[2].Vector.Span));
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 64 }));
    }

    [Fact]
    public async Task Image_embeddings_from_DI_find_the_same_class()
    {
        var services = new ServiceCollection();
        services.AddImageEmbeddingGenerator("resnet18_cntk", options: new ImageEmbeddingOptions { Normalize = true });
        using var provider = services.BuildServiceProvider();
        var generator = provider.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
        Assert.Equal(512, generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);

        var test = Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset", "test");
        string[] classes = ["trouser", "bag", "sneaker"];
        var files = classes.SelectMany(c => Directory.GetFiles(Path.Combine(test, c)).Order(StringComparer.Ordinal).Take(3)).ToArray();
        var embeddings = await generator.GenerateAsync(files.Select(f => new DataContent(File.ReadAllBytes(f), "image/png") { Name = f }));
        Assert.Equal(files.Length, embeddings.Count);
        Assert.All(embeddings, e => Assert.Equal(1f, TensorPrimitives.Norm(e.Vector.Span), 4));
        int sameClass = Enumerable.Range(0, files.Length).Count(q => Enumerable.Range(0, files.Length).Where(i => i != q)
            .MaxBy(i => TensorPrimitives.Dot(embeddings[q].Vector.Span, embeddings[i].Vector.Span)) / 3 == q / 3);
        Assert.True(sameClass >= 7, $"the nearest other image is of the same class for {sameClass} of 9 queries");
        var again = await generator.GenerateAsync([new DataContent(File.ReadAllBytes(files[0]), "image/png")]);
        Assert.Equal(embeddings[0].Vector.ToArray(), again[0].Vector.ToArray());

        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync([new DataContent("hello"u8.ToArray(), "text/plain")]));
        var corrupt = await Assert.ThrowsAsync<ImageDecodeException>(() => generator.GenerateAsync([new DataContent(new byte[] { 1, 2, 3 }, "image/png") { Name = "broken.png" }]));
        Assert.Contains("broken.png", corrupt.Message);
    }
}
