using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Text;

namespace TransferSharp.Extensions.AI;

/// <summary>DI registration of the generators, through Microsoft.Extensions.AI's <c>AddEmbeddingGenerator</c> (so the
/// returned builder adds caching, logging or telemetry as for any other generator). The generator is a singleton,
/// created on first use and disposed with the container.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>Registers an <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c> over the word vectors in
    /// <paramref name="path"/>.</summary>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddWordVectorEmbeddingGenerator(this IServiceCollection services, string path,
        WordVectorEmbeddingOptions? options = null, WordVectorsLoadOptions? loadOptions = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return services.AddEmbeddingGenerator(_ => WordVectorEmbeddingGenerator.Load(path, options, loadOptions));
    }

    /// <summary>Registers an <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c> over a pretrained text encoder
    /// (<paramref name="model"/>: "all-MiniLM-L6-v2" — offline once the host has called <c>MiniLmEncoder.Register()</c> —,
    /// another registered name, a Hugging Face folder or an ONNX encoder).</summary>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddTextEncoderEmbeddingGenerator(this IServiceCollection services, string model,
        TextEncoderEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        return services.AddEmbeddingGenerator(_ => TextEncoderEmbeddingGenerator.Load(model, options));
    }

    /// <summary>Registers an <c>IEmbeddingGenerator&lt;DataContent, Embedding&lt;float&gt;&gt;</c> over
    /// <paramref name="model"/>'s pooled features (a zoo name, an .onnx file or a trained model).</summary>
    public static EmbeddingGeneratorBuilder<DataContent, Embedding<float>> AddImageEmbeddingGenerator(this IServiceCollection services, string model,
        string? weights = null, ImageEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        return services.AddEmbeddingGenerator(_ => ImageEmbeddingGenerator.Load(model, weights, options));
    }
}
