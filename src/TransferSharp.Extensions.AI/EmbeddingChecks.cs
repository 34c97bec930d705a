using Microsoft.Extensions.AI;

namespace TransferSharp.Extensions.AI;

/// <summary>What both generators answer the same way.</summary>
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
