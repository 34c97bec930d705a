using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Text.FastText;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>Classifiers with the losses and options the reference set lacks (hierarchical softmax, one-vs-all
/// with char n-grams, pruned quantized n-grams, a quantized output matrix) against <c>fasttext predict-prob</c>
/// (Data/make_losses.sh).</summary>
[Trait("Category", "EmbeddingParity")]
public sealed class SupervisedLossTests
{
    private static readonly string DataDir = Path.Combine(Paths.RepoRoot, "tests", "TransferSharp.Tests", "Text", "Data");

    public static TheoryData<string> Models() => new() { "hs.bin", "ova.bin", "ova.ftz", "qout.ftz" };

    [Theory]
    [MemberData(nameof(Models))]
    public void Predictions_match_fasttext(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DataDir, "losses_expected.json")));
        var texts = doc.RootElement.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var expected = doc.RootElement.GetProperty("models").GetProperty(name);
        using var model = FastTextModel.Load(Path.Combine(DataDir, name));
        Assert.Equal(expected.GetProperty("loss").GetString(), model.Args.LossName);
        var rows = expected.GetProperty("predictions").EnumerateArray().ToList();
        for (int i = 0; i < texts.Count; i++)
        {
            var exp = rows[i].EnumerateArray().ToList();
            var ours = model.Predict(texts[i], 3);
            Assert.Equal(exp.Select(e => e.GetProperty("label").GetString()), ours.Select(p => p.Label));
            for (int j = 0; j < exp.Count; j++)
                Assert.True(Math.Abs(exp[j].GetProperty("prob").GetDouble() - ours[j].Probability) <= 1e-4,
                    $"{name} line {i} {ours[j].Label}: {ours[j].Probability} vs {exp[j].GetProperty("prob").GetDouble()}");
        }
        var sentence = EmbeddingFixture.Floats(expected.GetProperty("sentence_vector_0"));
        var ourSentence = model.GetSentenceVector(texts[0]);
        for (int j = 0; j < sentence.Length; j++) Assert.True(Math.Abs(sentence[j] - ourSentence[j]) <= 1e-5, $"{name} sentence vector [{j}]");
    }
}
