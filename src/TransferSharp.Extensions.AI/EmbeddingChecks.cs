using Microsoft.Extensions.AI;

namespace TransferSharp.Extensions.AI;

/// <summary>What the generators answer the same way.</summary>
internal static class EmbeddingChecks
{
    /// <summary>Local models have one output size: a request for another is refused, not silently ignored.</summary>
    public static void RequireDimensions(EmbeddingGenerationOptions? options, int dimensions, string? modelId)
    {
        if (options?.Dimensions is { } asked && asked != dimensions)
            throw new NotSupportedException($"{modelId} makes {dimensions}-dimensional embeddings; {asked} were asked for");
        if (options?.ModelId is { Length: > 0 } model && model != modelId)
            throw new NotSupportedException($"this generator runs {modelId}; model '{model}' was asked for");
    }

    /// <summary>The abstraction's result for vectors computed in one call: each tagged with the model id and one creation time.</summary>
    public static GeneratedEmbeddings<Embedding<float>> Generated(IReadOnlyList<float[]> vectors, string? modelId)
    {
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Count);
        var created = DateTimeOffset.UtcNow;
        foreach (var v in vectors) result.Add(new Embedding<float>(v) { ModelId = modelId, CreatedAt = created });
        return result;
    }

    /// <summary><see cref="IEmbeddingGenerator.GetService"/>: the metadata, the generator itself, or what it wraps.</summary>
    public static object? GetService(object generator, EmbeddingGeneratorMetadata metadata, Type serviceType, object? serviceKey, object inner)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return metadata;
        if (serviceType.IsInstanceOfType(generator)) return generator;
        return serviceType.IsInstanceOfType(inner) ? inner : null;
    }
}
