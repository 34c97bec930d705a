using Microsoft.Extensions.AI;
using TransferSharp.Text.Transformers;

namespace TransferSharp.Extensions.AI;

/// <summary>Settings of a <see cref="TextEncoderEmbeddingGenerator"/>.</summary>
public sealed record TextEncoderEmbeddingOptions
{
    /// <summary>Texts per forward pass (default <see cref="TextEncoder.DefaultBatchSize"/>).</summary>
    public int BatchSize { get; init; } = TextEncoder.DefaultBatchSize;

    /// <summary>The model id reported in metadata (default: the encoder's name, "all-MiniLM-L6-v2").</summary>
    public string? ModelId { get; init; }
}

/// <summary>
/// Sentence embeddings from a pretrained transformer encoder (<see cref="TextEncoder"/>: all-MiniLM-L6-v2, BGE, any
/// BERT-family folder or ONNX file) through Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>:
/// exactly <see cref="TextEncoder.Encode"/>'s vectors (pooled and, as the model says, normalised). Texts longer than the
/// encoder's maximum are truncated, and an empty text is embedded (as sentence-transformers does: [CLS] [SEP] alone).
/// Thread-safe: calls share the encoder one at a time (each already runs LibTorch's intra-op threads). Local and
/// synchronous underneath.
/// </summary>
public sealed class TextEncoderEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly TextEncoder _encoder;
    private readonly bool _ownsEncoder;
    // Encode switches the module to eval mode and back: two calls at once would race on that switch.
    private readonly Lock _lock = new();

    /// <summary>Wraps a loaded encoder (the caller keeps ownership).</summary>
    public TextEncoderEmbeddingGenerator(TextEncoder encoder, TextEncoderEmbeddingOptions? options = null)
        : this(encoder, options, ownsEncoder: false)
    {
    }

    private TextEncoderEmbeddingGenerator(TextEncoder encoder, TextEncoderEmbeddingOptions? options, bool ownsEncoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        Options = options ?? new TextEncoderEmbeddingOptions();
        if (Options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be at least 1, not {Options.BatchSize}");
        _encoder = encoder;
        _ownsEncoder = ownsEncoder;
        Metadata = new EmbeddingGeneratorMetadata("TransferSharp", null, Options.ModelId ?? encoder.Name, encoder.Dimension);
    }

    /// <summary>Loads the encoder (a name such as "all-MiniLM-L6-v2", a Hugging Face folder or an ONNX encoder; see
    /// <see cref="TextEncoder.Load"/>) and disposes it with the generator.</summary>
    public static TextEncoderEmbeddingGenerator Load(string model, TextEncoderEmbeddingOptions? options = null) =>
        new(TextEncoder.Load(model), options, ownsEncoder: true);

    /// <summary>The settings.</summary>
    public TextEncoderEmbeddingOptions Options { get; }

    /// <summary>Provider "TransferSharp", the model id and the dimension.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>The encoder.</summary>
    public TextEncoder Encoder => _encoder;

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        EmbeddingChecks.RequireDimensions(options, _encoder.Dimension, Metadata.DefaultModelId);
        var texts = values.Select(t => t ?? "").ToArray();
        float[][] vectors;
        lock (_lock) vectors = _encoder.Encode(texts, Options.BatchSize, cancellation: cancellationToken);
        return Task.FromResult(EmbeddingChecks.Generated(vectors, Metadata.DefaultModelId));
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        EmbeddingChecks.GetService(this, Metadata, serviceType, serviceKey, _encoder);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsEncoder) _encoder.Dispose();
    }
}
