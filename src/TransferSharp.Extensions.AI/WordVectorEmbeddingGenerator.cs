using Microsoft.Extensions.AI;
using TransferSharp.Text;
using TransferSharp.Text.Classification;

namespace TransferSharp.Extensions.AI;

/// <summary>How word vectors are pooled into one vector per text.</summary>
public enum SentencePooling
{
    /// <summary>The mean of the tokens' vectors (with <see cref="WordVectorEmbeddingOptions.UnitWordVectors"/>,
    /// exactly fastText's <c>get_sentence_vector</c> for unsupervised models).</summary>
    Mean,

    /// <summary>Smooth inverse frequency (Arora et al., 2017): each token weighted by a / (a + p(token)), summed and
    /// divided by the token count, so frequent words count less. p comes from the fastText model's word counts, or,
    /// for vectors without counts, from Zipf's law over the file's frequency order. The paper's removal of the
    /// corpus's first principal component is left to the caller (it needs a corpus).</summary>
    Sif,
}

/// <summary>Settings of a <see cref="WordVectorEmbeddingGenerator"/>.</summary>
public sealed record WordVectorEmbeddingOptions
{
    /// <summary>Mean (default) or SIF-weighted.</summary>
    public SentencePooling Pooling { get; init; } = SentencePooling.Mean;

    /// <summary>Divide each token's vector by its length before pooling (default, as fastText does; zero vectors are skipped).</summary>
    public bool UnitWordVectors { get; init; } = true;

    /// <summary>Lower-case texts before splitting them into tokens (for lower-cased vocabularies such as GloVe's).</summary>
    public bool Lowercase { get; init; }

    /// <summary>SIF's smoothing constant a (default 1e-3, the paper's).</summary>
    public double SifA { get; init; } = 1e-3;

    /// <summary>The model id reported in metadata (default: the vectors' file name).</summary>
    public string? ModelId { get; init; }
}

/// <summary>
/// Sentence embeddings from pretrained word vectors, through Microsoft.Extensions.AI's
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: a text is split on whitespace, each token looked up
/// (a token outside the vocabulary gets its fastText subword vector when the vectors came from a fastText .bin,
/// and is skipped otherwise), and the vectors pooled (<see cref="SentencePooling"/>). A text with no usable token
/// embeds as the zero vector. Thread-safe; local and synchronous underneath.
/// </summary>
public sealed class WordVectorEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly WordVectors _vectors;
    private readonly bool _ownsVectors;
    private readonly double _zipfNormalizer;

    /// <summary>Wraps loaded vectors (the caller keeps ownership).</summary>
    public WordVectorEmbeddingGenerator(WordVectors vectors, WordVectorEmbeddingOptions? options = null)
        : this(vectors, options, ownsVectors: false)
    {
    }

    private WordVectorEmbeddingGenerator(WordVectors vectors, WordVectorEmbeddingOptions? options, bool ownsVectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        _vectors = vectors;
        _ownsVectors = ownsVectors;
        Options = options ?? new WordVectorEmbeddingOptions();
        if (Options.SifA <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"SifA must be positive, not {Options.SifA}");
        // Zipf (s = 1): p(rank r) = 1 / ((r + 1) H_N), H_N the N-th harmonic number.
        _zipfNormalizer = Math.Log(Math.Max(1, vectors.Count)) + 0.5772156649 + 1.0 / (2 * Math.Max(1, vectors.Count));
        var path = vectors.LoadInfo.Path;
        Metadata = new EmbeddingGeneratorMetadata("TransferSharp", null,
            Options.ModelId ?? (string.IsNullOrEmpty(path) ? "word-vectors" : Path.GetFileName(path)), vectors.Dimension);
    }

    /// <summary>Loads the vectors from a file (word2vec, GloVe, fastText .vec/.bin; see <see cref="WordVectors.Load"/>)
    /// and disposes them with the generator.</summary>
    public static WordVectorEmbeddingGenerator Load(string path, WordVectorEmbeddingOptions? options = null, WordVectorsLoadOptions? loadOptions = null) =>
        new(WordVectors.Load(path, loadOptions), options, ownsVectors: true);

    /// <summary>The settings.</summary>
    public WordVectorEmbeddingOptions Options { get; }

    /// <summary>Provider "TransferSharp", the model id and the dimension.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>The vectors.</summary>
    public WordVectors Vectors => _vectors;

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        EmbeddingChecks.RequireDimensions(options, _vectors.Dimension, Metadata.DefaultModelId);
        var vectors = new List<float[]>();
        foreach (var text in values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            vectors.Add(Embed(text ?? ""));
        }
        return Task.FromResult(EmbeddingChecks.Generated(vectors, Metadata.DefaultModelId));
    }

    /// <summary>One text's vector (what <see cref="GenerateAsync"/> returns for it).</summary>
    public float[] Embed(string text)
    {
        int dim = _vectors.Dimension;
        var sum = new double[dim];
        var word = new float[dim];
        int tokens = 0;
        foreach (var token in TextVocabulary.Tokenize(text, Options.Lowercase))
        {
            if (!_vectors.TryGetVector(token, word)) continue;
            double scale = 1;
            if (Options.UnitWordVectors)
            {
                double norm = Math.Sqrt(word.Sum(v => (double)v * v));
                if (norm == 0) continue;
                scale = 1 / norm;
            }
            if (Options.Pooling == SentencePooling.Sif) scale *= Options.SifA / (Options.SifA + Probability(token));
            for (int i = 0; i < dim; i++) sum[i] += word[i] * scale;
            tokens++;
        }
        var result = new float[dim];
        if (tokens > 0) for (int i = 0; i < dim; i++) result[i] = (float)(sum[i] / tokens);
        return result;
    }

    /// <summary>The unigram probability SIF weights a token by (0 for a token outside the vocabulary).</summary>
    public double Probability(string token)
    {
        if (_vectors.Subwords is { TokenCount: > 0 } model) return (double)model.GetWordCount(token) / model.TokenCount;
        int rank = _vectors.IndexOf(token);
        return rank < 0 ? 0 : 1.0 / ((rank + 1) * _zipfNormalizer);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        EmbeddingChecks.GetService(this, Metadata, serviceType, serviceKey, _vectors);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsVectors) _vectors.Dispose();
    }
}
