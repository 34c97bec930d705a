using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Text;
using TransferSharp.Text.Evaluation;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>Analogy and word-pair evaluation against gensim 4.2's own results on the reference w2v.bin
/// (Data/make_evaluation.py): the same questions right and wrong per section, the same correlations and p-values.</summary>
[Trait("Category", "EmbeddingParity")]
public sealed class EvaluationTests
{
    private static readonly string DataDir = Path.Combine(Paths.RepoRoot, "tests", "TransferSharp.Tests", "Text", "Data");
    private static JsonElement Expected => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DataDir, "evaluation_expected.json"))).RootElement;

    private WordVectors Vectors()
    {
        // The data was made from the reference set's w2v.bin; another fixture directory has another vocabulary.
        var path = Path.Combine(Paths.Shared, "reference", "embeddings", "w2v.bin");
        Paths.RequireFixture(path, "w2v.bin of the shared reference set");
        return WordVectors.Load(path);
    }

    [SkippableFact]
    public void Analogies_match_gensim()
    {
        using var vectors = Vectors();
        foreach (var run in Expected.GetProperty("analogies").EnumerateArray())
        {
            var o = run.GetProperty("options");
            var options = new AnalogyEvaluationOptions
            {
                RestrictVocab = o.TryGetProperty("restrict_vocab", out var r) ? r.GetInt32() : 300_000,
                CaseInsensitive = !o.TryGetProperty("case_insensitive", out var c) || c.GetBoolean(),
                Dummy4Unknown = o.TryGetProperty("dummy4unknown", out var d) && d.GetBoolean(),
            };
            var result = vectors.EvaluateAnalogies(Path.Combine(DataDir, "analogies.txt"), options);
            Assert.Equal(run.GetProperty("score").GetDouble(), result.Accuracy, 12);
            var sections = run.GetProperty("sections").EnumerateArray().ToList();
            var ours = result.Sections.Append(result.Total).ToList();
            Assert.Equal(sections.Select(s => s.GetProperty("section").GetString()), ours.Select(s => s.Name));
            for (int i = 0; i < sections.Count; i++)
            {
                Assert.Equal(Quads(sections[i].GetProperty("correct")), ours[i].Correct.Select(q => $"{q.A} {q.B} {q.C} {q.Expected}"));
                Assert.Equal(Quads(sections[i].GetProperty("incorrect")), ours[i].Incorrect.Select(q => $"{q.A} {q.B} {q.C} {q.Expected}"));
            }
        }
    }

    [SkippableFact]
    public void Word_pairs_match_gensim()
    {
        using var vectors = Vectors();
        foreach (var run in Expected.GetProperty("pairs").EnumerateArray())
        {
            var o = run.GetProperty("options");
            var options = new WordPairEvaluationOptions
            {
                RestrictVocab = o.TryGetProperty("restrict_vocab", out var r) ? r.GetInt32() : 300_000,
                CaseInsensitive = !o.TryGetProperty("case_insensitive", out var c) || c.GetBoolean(),
                Dummy4Unknown = o.TryGetProperty("dummy4unknown", out var d) && d.GetBoolean(),
            };
            var result = vectors.EvaluateWordPairs(Path.Combine(DataDir, "pairs.tsv"), options);
            Assert.Equal(run.GetProperty("pearson")[0].GetDouble(), result.Pearson, 6);
            Assert.Equal(run.GetProperty("pearson")[1].GetDouble(), result.PearsonPValue, 6);
            Assert.Equal(run.GetProperty("spearman")[0].GetDouble(), result.Spearman, 6);
            Assert.Equal(run.GetProperty("spearman")[1].GetDouble(), result.SpearmanPValue, 6);
            Assert.Equal(run.GetProperty("oov_ratio").GetDouble(), result.OutOfVocabularyPercent, 9);
        }
    }

    [Fact]
    public void Spearman_gives_ties_their_average_rank()
    {
        Assert.Equal([1.5, 1.5, 3, 5, 5, 5], Statistics.AverageRanks([1, 1, 2, 3, 3, 3]));
        // scipy 1.10: spearmanr([1, 2, 2, 3, 4], [2, 1, 3, 3, 5]) = (0.7631578947368421, 0.1333391195318063)
        var (rho, p) = Statistics.Spearman([1, 2, 2, 3, 4], [2, 1, 3, 3, 5]);
        Assert.Equal(0.7631578947368421, rho, 12);
        Assert.Equal(0.1333391195318063, p, 10);
        // scipy 1.10: pearsonr([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]) = (0.7745966692414834, 0.12402706265755462)
        var (r, pp) = Statistics.Pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
        Assert.Equal(0.7745966692414834, r, 12);
        Assert.Equal(0.12402706265755462, pp, 10);
    }

    [Fact]
    public void Case_folding_is_pythons_upper()
    {
        Assert.Equal("STRASSE", PythonCase.Upper("straße"));
        Assert.Equal("FINE", PythonCase.Upper("ﬁne"));
        Assert.Equal("ÇA", PythonCase.Upper("ça"));
    }

    private static IEnumerable<string> Quads(JsonElement list) => list.EnumerateArray().Select(q => string.Join(' ', q.EnumerateArray().Select(w => w.GetString())));
}
