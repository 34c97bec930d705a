using Microsoft.Extensions.AI;
using TorchSharp;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Extensions.AI;

/// <summary>
/// Image embeddings through Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: the
/// pooled features of a vision model (any zoo model, ONNX file or trained TransferSharp model) for images given as
/// <see cref="DataContent"/> — encoded bytes with an image media type, the abstraction's own type for binary
/// content (<c>new DataContent(File.ReadAllBytes(path), "image/jpeg")</c>, or a data: URI). Each image gets the
/// preprocessing bound to the model's weights. Thread-safe.
/// </summary>
public sealed class ImageEmbeddingGenerator : IEmbeddingGenerator<DataContent, Embedding<float>>
{
    private readonly Predictor _predictor;

    /// <summary>Builds the generator over a loaded model (it keeps an optimised copy; the model may be disposed afterwards).</summary>
    public ImageEmbeddingGenerator(VisionModel model, ImageEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Options = options ?? new ImageEmbeddingOptions();
        _predictor = model.CreatePredictor(Options.Predictor);
        Metadata = new EmbeddingGeneratorMetadata("TransferSharp", null, Options.ModelId ?? model.Description, model.Module.Graph.NumFeatures);
    }

    /// <summary>Loads <paramref name="model"/> (a zoo name, an .onnx file or a trained model; <paramref name="weights"/> as
    /// for <see cref="VisionModel.Load"/>) and builds the generator.</summary>
    public static ImageEmbeddingGenerator Load(string model, string? weights = null, ImageEmbeddingOptions? options = null)
    {
        using var loaded = VisionModel.Load(model, weights);
        return new ImageEmbeddingGenerator(loaded, options);
    }

    /// <summary>The settings.</summary>
    public ImageEmbeddingOptions Options { get; }

    /// <summary>Provider "TransferSharp", the model id and the feature count.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<DataContent> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        EmbeddingChecks.RequireDimensions(options, Metadata.DefaultModelDimensions ?? 0, Metadata.DefaultModelId);
        var images = values.ToArray();
        var p = _predictor.Preprocessing;
        int per = p.Channels * p.CropSize * p.CropSize, batchSize = Math.Max(1, _predictor.Options.BatchSize);
        var vectors = new List<float[]>(images.Length);
        for (int start = 0; start < images.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, images.Length - start);
            var pixels = new float[(long)per * n];
            try
            {
                Parallel.For(0, n, i => Preprocess(images[start + i], start + i, p, pixels.AsSpan(i * per, per)));
            }
            catch (AggregateException e)
            {
                // The first bad image's own typed exception, not the parallel loop's wrapper.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            using var scope = torch.NewDisposeScope();
            var batch = torch.tensor(pixels).reshape(n, p.Channels, p.CropSize, p.CropSize);
            var features = _predictor.Features(batch, Options.Pool).data<float>().ToArray();
            int dim = features.Length / n;
            for (int i = 0; i < n; i++)
            {
                var v = features.AsSpan(i * dim, dim).ToArray();
                if (Options.Normalize) UnitLength(v);
                vectors.Add(v);
            }
        }
        return Task.FromResult(EmbeddingChecks.Generated(vectors, Metadata.DefaultModelId));
    }

    private static void Preprocess(DataContent image, int index, Preprocessing p, Span<float> destination)
    {
        var name = image.Name ?? $"image {index}";
        if (!image.HasTopLevelMediaType("image"))
            throw new ArgumentException($"{name}: media type '{image.MediaType}' is not an image (image/jpeg, image/png, … expected)");
        var decoded = ImageDecoder.Decode(image.Data.ToArray(), name);
        ImageTransforms.Normalize(ImageTransforms.ResizeAndCrop(decoded, p), p, destination);
    }

    private static void UnitLength(float[] v)
    {
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        if (norm > 0) for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] / norm);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        EmbeddingChecks.GetService(this, Metadata, serviceType, serviceKey, _predictor);

    /// <inheritdoc />
    public void Dispose() => _predictor.Dispose();
}

/// <summary>Settings of an <see cref="ImageEmbeddingGenerator"/>.</summary>
public sealed record ImageEmbeddingOptions
{
    /// <summary>How the final feature map is pooled (default average, the features heads are trained on).</summary>
    public PoolKind Pool { get; init; } = PoolKind.Avg;

    /// <summary>Scale every embedding to unit length (cosine similarity becomes a dot product). Off by default.</summary>
    public bool Normalize { get; init; }

    /// <summary>Device and batch size of the underlying predictor.</summary>
    public PredictorOptions? Predictor { get; init; }

    /// <summary>The model id reported in metadata (default: the model's description).</summary>
    public string? ModelId { get; init; }
}
