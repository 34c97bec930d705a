using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Tests.Text.Transformers;
using Xunit;
using Xunit.Abstractions;

namespace TransferSharp.Tests.Text;

/// <summary>`transfer text embed` and `transfer models --text`, run in-process through the CLI's entry point with the
/// offline all-MiniLM-L6-v2 the CLI registers.</summary>
[Collection("Console")]
public sealed class TextEmbedCliTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>The error reporter wraps long messages to the console's width.</summary>
    private static string OneLine(string s) => System.Text.RegularExpressions.Regex.Replace(s, @"\s+", " ");

    [Fact]
    public void Embed_json_equals_the_packages_sentence_encoder_and_human_output_is_the_similarity_matrix()
    {
        var texts = TextEncoderTests.Sentences;
        var json = CliRunner.RunJson(["text", "embed", .. texts]);
        Assert.Equal(texts.Length, json.GetArrayLength());
        var vectors = json.EnumerateArray().Select(r => r.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        Assert.Equal(texts, json.EnumerateArray().Select(r => r.GetProperty("text").GetString()));
        Assert.All(json.EnumerateArray(), r => Assert.False(r.GetProperty("truncated").GetBoolean()));
        TextEncoderTests.AssertEqualsSentenceEncoder(vectors, texts, output);
        // ONNX Runtime gives the same embeddings as the default TorchSharp graph (MKL's AVX-512 path in the test host).
        var torch = CliRunner.RunJson(["text", "embed", "--engine", "onnxruntime", .. texts]);
        TextEncoderTests.AssertEqualsSentenceEncoder(torch.EnumerateArray().Select(r => r.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray(), texts, output);

        var (code, stdout, _) = CliRunner.Run("text", "embed", "A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell.");
        Assert.Equal(0, code);
        Assert.Contains("all-MiniLM-L6-v2: 3 texts → 384-d vectors (mean pooling, normalised; torch engine)", OneLine(stdout));
        Assert.Contains("cosine similarity", stdout);
        Assert.Contains("1.000", stdout);
        (code, stdout, _) = CliRunner.Run("text", "embed", "one text");
        Assert.Equal(0, code);
        Assert.Contains("first values", stdout);
    }

    [Fact]
    public void Embed_file_to_json_lines_warns_of_truncated_texts_and_refuses_empty_lines()
    {
        var file = Path.Combine(_temp, "texts.txt");
        var longText = string.Join(' ', Enumerable.Repeat("word", 400));
        File.WriteAllLines(file, ["first line", longText, "third line"]);
        var outFile = Path.Combine(_temp, "out.jsonl");
        var (code, stdout, stderr) = CliRunner.Run("text", "embed", "--file", file, "--out", outFile, "--batch-size", "2", "--json");
        Assert.Equal(0, code);
        Assert.Contains("1 of 3 texts are longer than all-MiniLM-L6-v2's 256 tokens and were truncated", stderr);
        Assert.Contains("text 2", stderr);
        using (var summary = JsonDocument.Parse(stdout))
        {
            Assert.Equal(3, summary.RootElement.GetProperty("texts").GetInt32());
            Assert.Equal(384, summary.RootElement.GetProperty("dimension").GetInt32());
            Assert.Equal("torch", summary.RootElement.GetProperty("engine").GetString());
        }
        var lines = File.ReadAllLines(outFile);
        Assert.Equal(3, lines.Length);
        using (var second = JsonDocument.Parse(lines[1]))
        {
            Assert.Equal(longText, second.RootElement.GetProperty("text").GetString());
            Assert.Equal(384, second.RootElement.GetProperty("embedding").GetArrayLength());
        }
        Assert.Single(Directory.GetFiles(_temp, "out*"));

        File.WriteAllLines(file, ["first line", "", "third line"]);
        (code, _, stderr) = CliRunner.Run("text", "embed", "--file", file);
        Assert.NotEqual(0, code);
        Assert.Contains(file, stderr);
        Assert.Contains("line 2 is empty", OneLine(stderr));
        (code, _, stderr) = CliRunner.Run("text", "embed", "fine", "  ");
        Assert.NotEqual(0, code);
        Assert.Contains("text 2 is empty", OneLine(stderr));
    }

    [Fact]
    public void Unknown_options_and_models_are_refused_and_models_lists_the_text_encoders()
    {
        var (code, _, stderr) = CliRunner.Run("text", "embed", "--bogus-option", "hello");
        Assert.Equal(2, code);
        Assert.Contains("Unknown option 'bogus-option'", stderr);
        (code, _, stderr) = CliRunner.Run("text", "embed", "--engine", "tensorrt", "hello");
        Assert.NotEqual(0, code);
        Assert.Contains("--engine must be torch or onnxruntime, not 'tensorrt'", OneLine(stderr));
        (code, _, stderr) = CliRunner.Run("text", "embed", "--model", "no-such-encoder", "hello");
        Assert.NotEqual(0, code);
        Assert.Contains("no-such-encoder", stderr);
        Assert.Contains("all-MiniLM-L6-v2", stderr);

        var rows = CliRunner.RunJson("models", "--text");
        var minilm = rows.EnumerateArray().Where(r => r.GetProperty("name").GetString() == "all-MiniLM-L6-v2").ToList();
        Assert.Equal(["bundled", "hub"], minilm.Select(r => r.GetProperty("tag").GetString()));
        Assert.True(minilm[0].GetProperty("isDefault").GetBoolean());
        Assert.Contains(rows.EnumerateArray(), r => r.GetProperty("repository").GetString() == "BAAI/bge-small-en-v1.5");
        var (_, human, _) = CliRunner.Run("models", "--text");
        Assert.Contains("text encoder", human);
        Assert.Contains("bge-small-en-v1.5", human);
    }
}
