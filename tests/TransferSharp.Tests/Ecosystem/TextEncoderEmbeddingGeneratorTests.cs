using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Extensions.AI;
using TransferSharp.Tests.Text.Transformers;
using TransferSharp.Text.Transformers;
using Xunit;

namespace TransferSharp.Tests.Ecosystem;

/// <summary>The text encoder's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>, resolved from DI: equal to
/// <see cref="TextEncoder.Encode"/>, and the same under concurrent calls.</summary>
[Trait("Category", "EmbeddingGenerators")]
public sealed class TextEncoderEmbeddingGeneratorTests
{
    [Fact]
    public async Task Generator_from_di_equals_encode_also_under_concurrent_calls()
    {
        var services = new ServiceCollection();
        services.AddTextEncoderEmbeddingGenerator(MiniLmEncoder.Name, new TextEncoderEmbeddingOptions { BatchSize = 2 });
        using var provider = services.BuildServiceProvider();
        var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("TransferSharp", metadata.ProviderName);
        Assert.Equal("all-MiniLM-L6-v2", metadata.DefaultModelId);
        Assert.Equal(384, metadata.DefaultModelDimensions);
        var encoder = generator.GetService<TextEncoder>()!;
        var texts = TextEncoderTests.Sentences;
        var expected = encoder.Encode(texts);

        // Four callers at once, each with the texts in another order.
        var orders = Enumerable.Range(0, 4).Select(k => texts.Skip(k).Concat(texts.Take(k)).ToArray()).ToArray();
        var results = await Task.WhenAll(orders.Select(o => Task.Run(() => generator.GenerateAsync(o))));
        for (int k = 0; k < orders.Length; k++)
            for (int i = 0; i < texts.Length; i++)
            {
                Assert.Equal("all-MiniLM-L6-v2", results[k][i].ModelId);
                var want = expected[Array.IndexOf(texts, orders[k][i])];
                var got = results[k][i].Vector.ToArray();
                for (int j = 0; j < want.Length; j++) Assert.True(Math.Abs(want[j] - got[j]) <= 1e-6f, $"caller {k}, text {i}, value {j}: {got[j]} vs {want[j]}");
            }
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 768 }));
    }
}
