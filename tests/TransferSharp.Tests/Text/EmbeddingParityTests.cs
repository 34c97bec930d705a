using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TransferSharp.Text;
using Xunit;
using Xunit.Abstractions;

namespace TransferSharp.Tests.Text;

/// <summary>
/// Every section of the embedding fixtures' expected.json (outputs of Debian's fasttext 0.9.2 and gensim 4.2 on
/// the fixture files), one test each, named after the section. Tolerances are the issue's: word and sentence
/// vectors ≤ 1e-5 absolute, scores and probabilities ≤ 1e-4, the same words and labels in the same order.
/// </summary>
[Trait("Category", "EmbeddingParity")]
public sealed class EmbeddingParityTests(EmbeddingFixture fx, ITestOutputHelper output) : IClassFixture<EmbeddingFixture>
{
    private const double VectorTolerance = 1e-5;
    private const double ScoreTolerance = 1e-4;

    [SkippableFact]
    public void fasttext_word_vectors()
    {
        var section = fx.Section("fasttext_word_vectors");
        double worst = 0;
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var word = e.GetProperty("word").GetString()!;
            Assert.Equal(e.GetProperty("word_id").GetInt32(), fx.FastText.GetWordId(word));
            Assert.Equal(e.GetProperty("in_vocab").GetBoolean(), fx.FastText.GetWordId(word) >= 0);
            Assert.Equal(e.GetProperty("utf8_bytes").GetInt32(), Encoding.UTF8.GetByteCount(word));
            var sub = fx.FastText.GetSubwords(word);
            Assert.Equal(e.GetProperty("subwords").EnumerateArray().Select(s => s.GetString()!), sub.Subwords);
            Assert.Equal(e.GetProperty("input_rows").EnumerateArray().Select(s => s.GetInt32()), sub.Rows);
            worst = Math.Max(worst, AssertClose(EmbeddingFixture.Floats(e.GetProperty("vector")), fx.FastText.GetWordVector(word), VectorTolerance, word));
        }
        output.WriteLine($"max |ours - fastText| = {worst:G3}");
    }

    [SkippableFact]
    public void fasttext_sentence_vectors()
    {
        var section = fx.Section("fasttext_sentence_vectors");
        double worst = 0;
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var sentence = e.GetProperty("sentence").GetString()!;
            worst = Math.Max(worst, AssertClose(EmbeddingFixture.Floats(e.GetProperty("vector")), fx.FastText.GetSentenceVector(sentence), VectorTolerance, sentence));
        }
        output.WriteLine($"max |ours - fastText| = {worst:G3}");
    }

    [SkippableFact]
    public void fasttext_nn()
    {
        var section = fx.Section("fasttext_nn");
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var query = e.GetProperty("query").GetString()!;
            int k = e.GetProperty("neighbors").GetArrayLength();
            AssertRanking(e.GetProperty("neighbors"), fx.FastText.NearestNeighbors(query, k), $"nn {query}");
        }
    }

    [SkippableFact]
    public void fasttext_analogies()
    {
        var section = fx.Section("fasttext_analogies");
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            string a = e.GetProperty("a").GetString()!, b = e.GetProperty("b").GetString()!, c = e.GetProperty("c").GetString()!;
            var expected = e.GetProperty("results");
            AssertRanking(expected, fx.FastText.Analogies(a, b, c, expected.GetArrayLength()), $"analogies {a} {b} {c}");
        }
    }

    [SkippableFact]
    public void gensim_from_fasttext()
    {
        var section = fx.Section("gensim_from_fasttext");
        var vectors = fx.FastTextVectors;
        Assert.NotNull(vectors.Subwords);
        double worst = 0;
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var word = e.GetProperty("word").GetString()!;
            Assert.Equal(e.GetProperty("in_vocab").GetBoolean(), vectors.Contains(word));
            worst = Math.Max(worst, AssertClose(EmbeddingFixture.Floats(e.GetProperty("vector")), vectors[word], VectorTolerance, word));
        }
        output.WriteLine($"max |ours - gensim load_facebook_vectors| = {worst:G3}");
    }

    [SkippableFact]
    public void word2vec_most_similar()
    {
        var section = fx.Section("word2vec_most_similar");
        foreach (var (name, vectors) in fx.Word2VecFiles)
            foreach (var e in section.GetProperty("entries").EnumerateArray())
            {
                var query = e.GetProperty("query").GetString()!;
                var expected = e.GetProperty("results");
                AssertRanking(expected, vectors.MostSimilar(query, expected.GetArrayLength()), $"{name} most_similar {query}");
                AssertRanking(expected, vectors.NearestNeighbors([query], expected.GetArrayLength())[0], $"{name} batched {query}");
            }
    }

    [SkippableFact]
    public void word2vec_vectors()
    {
        var section = fx.Section("word2vec_vectors");
        foreach (var (name, vectors) in fx.Word2VecFiles)
            foreach (var e in section.GetProperty("entries").EnumerateArray())
            {
                var word = e.GetProperty("word").GetString()!;
                Assert.Equal(e.GetProperty("index").GetInt32(), vectors.IndexOf(word));
                // gensim invents counts for word2vec files as (vocabulary size - index); so does the file order.
                Assert.Equal(e.GetProperty("count").GetInt32(), vectors.Count - vectors.IndexOf(word));
                // The text files hold shortest round-trip decimals: parsing must give the binary's exact bits.
                Assert.Equal(EmbeddingFixture.Floats(e.GetProperty("vector")), vectors[word]);
            }
    }

    [SkippableFact]
    public void word2vec_similarity()
    {
        var section = fx.Section("word2vec_similarity");
        foreach (var (name, vectors) in fx.Word2VecFiles)
            foreach (var e in section.GetProperty("entries").EnumerateArray())
            {
                string a = e.GetProperty("word1").GetString()!, b = e.GetProperty("word2").GetString()!;
                double expected = e.GetProperty("similarity").GetDouble();
                double ours = vectors.Similarity(a, b);
                Assert.True(Math.Abs(expected - ours) <= ScoreTolerance, $"{name} similarity({a}, {b}) = {ours}, gensim {expected}");
            }
    }

    [SkippableFact]
    public void word2vec_analogy()
    {
        var section = fx.Section("word2vec_analogy");
        foreach (var (name, vectors) in fx.Word2VecFiles)
            foreach (var e in section.GetProperty("entries").EnumerateArray())
            {
                var positive = e.GetProperty("positive").EnumerateArray().Select(x => x.GetString()!).ToList();
                var negative = e.GetProperty("negative").EnumerateArray().Select(x => x.GetString()!).ToList();
                var expected = e.GetProperty("results");
                AssertRanking(expected, vectors.MostSimilar(positive, negative, expected.GetArrayLength()), $"{name} analogy {string.Join(",", positive)} - {string.Join(",", negative)}");
            }
    }

    [SkippableFact]
    public void word2vec_doesnt_match()
    {
        var section = fx.Section("word2vec_doesnt_match");
        foreach (var (name, vectors) in fx.Word2VecFiles)
            foreach (var e in section.GetProperty("entries").EnumerateArray())
            {
                var words = e.GetProperty("words").EnumerateArray().Select(x => x.GetString()!).ToList();
                Assert.Equal(e.GetProperty("result").GetString(), vectors.DoesntMatch(words));
                var ranked = vectors.RankByCentrality(words);
                var expected = e.GetProperty("rank_by_centrality").EnumerateArray().ToList();
                Assert.Equal(expected.Select(x => x.GetProperty("word").GetString()), ranked.Select(r => r.Word));
                for (int i = 0; i < expected.Count; i++)
                    Assert.True(Math.Abs(expected[i].GetProperty("cosine_to_mean").GetDouble() - ranked[i].Score) <= ScoreTolerance, $"{name} centrality {ranked[i].Word}");
            }
    }

    [SkippableFact]
    public void supervised_predictions()
    {
        var section = fx.Section("supervised_predictions");
        double worst = 0;
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var text = e.GetProperty("text").GetString()!;
            foreach (var (key, model) in new[] { ("sup_bin", fx.Supervised), ("sup_ftz", fx.Quantized) })
            {
                var expected = e.GetProperty(key).EnumerateArray().ToList();
                var ours = model.Predict(text, expected.Count);
                Assert.Equal(expected.Select(x => x.GetProperty("label").GetString()), ours.Select(p => p.Label));
                for (int i = 0; i < expected.Count; i++)
                {
                    double d = Math.Abs(expected[i].GetProperty("prob").GetDouble() - ours[i].Probability);
                    worst = Math.Max(worst, d);
                    Assert.True(d <= ScoreTolerance, $"{key} line {e.GetProperty("index").GetInt32()} {ours[i].Label}: {ours[i].Probability} vs {expected[i].GetProperty("prob").GetDouble()}");
                }
            }
        }
        output.WriteLine($"max |ours - fastText| probability = {worst:G3}");
        foreach (var (name, model) in new[] { ("sup.bin", fx.Supervised), ("sup.ftz", fx.Quantized) })
        {
            var m = section.GetProperty("test_metrics").GetProperty(name);
            var result = model.Test(fx.File("fortunes.test.txt"), 1);
            Assert.Equal(m.GetProperty("N").GetInt32(), result.Examples);
            Assert.Equal(m.GetProperty("P@1").GetDouble(), result.Precision, 12);
            Assert.Equal(m.GetProperty("R@1").GetDouble(), result.Recall, 12);
        }
    }

    [SkippableFact]
    public void files()
    {
        var section = fx.Section("files");
        foreach (var e in section.GetProperty("entries").EnumerateArray())
        {
            var name = e.GetProperty("name").GetString()!;
            var path = fx.File(name);
            Assert.Equal(e.GetProperty("bytes").GetInt64(), new FileInfo(path).Length);
            using (var stream = File.OpenRead(path))
                Assert.Equal(e.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(stream)));
            if (name.EndsWith(".bin", StringComparison.Ordinal) && name.StartsWith("w2v", StringComparison.Ordinal) || name.EndsWith(".txt", StringComparison.Ordinal) && !name.StartsWith("fortunes", StringComparison.Ordinal) || name.EndsWith(".vec", StringComparison.Ordinal))
            {
                using var v = WordVectors.Load(path);
                Assert.Equal(e.GetProperty("vocab_size").GetInt32(), v.Count);
                Assert.Equal(e.GetProperty("dim").GetInt32(), v.Dimension);
                if (v.LoadInfo.DeclaredCount is { } declared) Assert.Equal(e.GetProperty("vocab_size").GetInt64(), declared);
            }
            else if (name.EndsWith(".bin", StringComparison.Ordinal) || name.EndsWith(".ftz", StringComparison.Ordinal))
            {
                using var m = TransferSharp.Text.FastText.FastTextModel.Load(path);
                Assert.Equal(e.GetProperty("vocab_size").GetInt32(), m.Words.Count);
                Assert.Equal(e.GetProperty("labels").GetInt32(), m.Labels.Count);
                Assert.Equal(e.GetProperty("dim").GetInt32(), m.Dimension);
                Assert.Equal(e.GetProperty("quantized").GetBoolean(), m.IsQuantized);
                var h = e.GetProperty("header_args");
                Assert.Equal(h.GetProperty("dim").GetInt32(), m.Args.Dim);
                Assert.Equal(h.GetProperty("ws").GetInt32(), m.Args.WindowSize);
                Assert.Equal(h.GetProperty("epoch").GetInt32(), m.Args.Epoch);
                Assert.Equal(h.GetProperty("minCount").GetInt32(), m.Args.MinCount);
                Assert.Equal(h.GetProperty("neg").GetInt32(), m.Args.Negatives);
                Assert.Equal(h.GetProperty("wordNgrams").GetInt32(), m.Args.WordNgrams);
                Assert.Equal(h.GetProperty("loss").GetString(), m.Args.LossName);
                Assert.Equal(h.GetProperty("model").GetString(), m.Args.ModelName);
                Assert.Equal(h.GetProperty("bucket").GetInt32(), m.Args.Bucket);
                Assert.Equal(h.GetProperty("minn").GetInt32(), m.Args.MinN);
                Assert.Equal(h.GetProperty("maxn").GetInt32(), m.Args.MaxN);
                Assert.Equal(h.GetProperty("lrUpdateRate").GetInt32(), m.Args.LrUpdateRate);
                Assert.Equal(h.GetProperty("t").GetDouble(), m.Args.SamplingThreshold);
            }
            else if (e.TryGetProperty("label_counts", out var counts))
            {
                var labels = File.ReadLines(path).Select(l => l.Split(' ', 2)[0]).ToList();
                Assert.Equal(e.GetProperty("lines").GetInt32(), labels.Count);
                foreach (var c in counts.EnumerateObject()) Assert.Equal(c.Value.GetInt32(), labels.Count(l => l == c.Name));
            }
        }
    }

    private static double AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            worst = Math.Max(worst, d);
            Assert.True(d <= tolerance, $"{what}[{i}]: ours {actual[i]}, reference {expected[i]} (|diff| {d:G3} > {tolerance})");
        }
        return worst;
    }

    private static void AssertRanking(JsonElement expected, IReadOnlyList<WordScore> actual, string what)
    {
        var exp = expected.EnumerateArray().ToList();
        Assert.True(exp.Select(x => x.GetProperty("word").GetString()).SequenceEqual(actual.Select(a => a.Word)),
            $"{what}: expected [{string.Join(", ", exp.Select(x => x.GetProperty("word").GetString()))}], got [{string.Join(", ", actual.Select(a => a.Word))}]");
        for (int i = 0; i < exp.Count; i++)
        {
            double d = Math.Abs(exp[i].GetProperty("score").GetDouble() - actual[i].Score);
            Assert.True(d <= ScoreTolerance, $"{what}: {actual[i].Word} score {actual[i].Score} vs {exp[i].GetProperty("score").GetDouble()}");
        }
    }
}
