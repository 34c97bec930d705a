using System.Text;
using TransferSharp.IO;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers.Tokenization;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// Issue 16 item 7's tokenizer inputs: broken tokenizer files end in a <see cref="TokenizerFileException"/> (or
/// <see cref="InvalidUtf8Exception"/>) naming the file; empty and mismatched batches are refused by option.
/// </summary>
public sealed class TokenizerBadInputTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static T Fails<T>(string path, Action load) where T : InvalidFileException
    {
        var e = Assert.Throws<T>(load);
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    private static readonly string Specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";

    [Fact]
    public void Empty_vocabulary()
    {
        foreach (var (name, text) in new[] { ("empty.txt", ""), ("blank.txt", "\n\n\r\n") })
        {
            var path = _temp.Write(name, text);
            Assert.Contains("empty", Fails<TokenizerFileException>(path, () => BertTextTokenizer.Load(path)).Message);
        }
    }

    [Fact]
    public void Duplicated_token_names_both_lines()
    {
        var path = _temp.Write("vocab.txt", Specials + "hello\nworld\nhello\n");
        var e = Fails<TokenizerFileException>(path, () => BertTextTokenizer.Load(path));
        Assert.Contains("lines 6 and 8", e.Message);
        Assert.Equal(8, e.LineNumber);
    }

    [Fact]
    public void Binary_or_non_UTF8_vocabulary()
    {
        var nul = _temp.Write("nul.txt", [.. Encoding.UTF8.GetBytes(Specials), 0x00, 0x01, 0x02, 0x0a]);
        Assert.Contains("binary", Fails<TokenizerFileException>(nul, () => BertTextTokenizer.Load(nul)).Message);
        var latin1 = _temp.Write("latin1.txt", [.. Encoding.UTF8.GetBytes(Specials + "caf"), 0xE9, 0x0a]);
        var e = Fails<InvalidUtf8Exception>(latin1, () => BertTextTokenizer.Load(latin1));
        Assert.Equal(6, e.LineNumber);
        Assert.Equal(Specials.Length + 3, e.ByteOffset);
    }

    [Fact]
    public void Vocabulary_without_BERT_special_tokens()
    {
        var path = _temp.Write("vocab.txt", "<s>\n</s>\nhello\n");
        var e = Fails<TokenizerFileException>(path, () => BertTextTokenizer.Load(path));
        Assert.Contains("[UNK]", e.Message);
        Assert.Contains("[CLS]", e.Message);
    }

    [Fact]
    public void Malformed_or_foreign_tokenizer_json()
    {
        string[] bad =
        [
            """{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0,""",
            """[1, 2, 3]""",
            """{"model": {"type": "BPE", "vocab": {}, "merges": []}}""",
            """{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 2}}}""",
            """{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": "one"}}}""",
            """{"normalizer": {"type": "Sequence", "normalizers": []}, "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}}}""",
        ];
        string[] says = ["malformed JSON", "no \"model\"", "BPE, not WordPiece", "no token has id 1", "not a non-negative integer", "Sequence, not BertNormalizer"];
        for (int i = 0; i < bad.Length; i++)
        {
            var path = _temp.Write($"tokenizer{i}.json", bad[i]);
            Assert.Contains(says[i], Fails<TokenizerFileException>(path, () => BertTextTokenizer.Load(path)).Message);
        }
        var config = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "cfg")).FullName, "tokenizer_config.json");
        File.WriteAllText(Path.Combine(_temp.Path, "cfg", "vocab.txt"), Specials);
        File.WriteAllText(config, """{"do_lower_case": "yes"}""");
        Assert.Contains("do_lower_case", Fails<TokenizerFileException>(config, () => BertTextTokenizer.Load(Path.Combine(_temp.Path, "cfg"))).Message);
    }

    [Fact]
    public void Folder_without_tokenizer_files()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_temp.Path, "model")).FullName;
        Assert.Contains("neither tokenizer.json nor vocab.txt", Fails<TokenizerFileException>(dir, () => BertTextTokenizer.Load(dir)).Message);
    }

    [Fact]
    public void Empty_batch_and_mismatched_pairs_are_refused()
    {
        var path = _temp.Write("vocab.txt", Specials + "a\n");
        var t = BertTextTokenizer.Load(path);
        Assert.Equal("texts", Assert.Throws<InvalidOptionException>(() => t.EncodeBatch([])).Option);
        Assert.Equal("pairs", Assert.Throws<InvalidOptionException>(() => t.EncodeBatch(["a"], ["b", "c"])).Option);
    }
}
