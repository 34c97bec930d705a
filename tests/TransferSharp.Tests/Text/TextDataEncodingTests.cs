using System.Text;
using TransferSharp.IO;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Classification;
using TransferSharp.Text.FastText;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// Text data files with bytes that are not UTF-8 (issue 16 item 7) fail with an <see cref="InvalidUtf8Exception"/>
/// naming the file, the line and the byte offset, instead of reading on with U+FFFD in place of the bytes.
/// </summary>
public sealed class TextDataEncodingTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Write(string name, string latin1) => _temp.Write(name, Encoding.Latin1.GetBytes(latin1));

    private static InvalidUtf8Exception Fails(string path, Action load)
    {
        var e = Assert.Throws<InvalidUtf8Exception>(load);
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    [Theory]
    [InlineData("data.csv", "text,label\nfine,pos\nbad \xff byte,neg\n", 3, 24)]
    [InlineData("data.tsv", "fine\tpos\ncaf\xe9\tneg\n", 2, 12)]
    [InlineData("data.txt", "__label__a fine\n__label__b \xc3\x28 broken\n", 2, 27)]
    public void Text_datasets_name_the_line_and_byte_of_invalid_UTF8(string name, string latin1, int line, int offset)
    {
        var path = Write(name, latin1);
        var e = Fails(path, () => TextDataset.Load(path));
        Assert.Equal(line, e.LineNumber);
        Assert.Equal(offset, e.ByteOffset);
        Assert.Contains($"line {line} (byte offset {offset})", e.Message);
    }

    [SkippableFact]
    public void FastText_test_and_text_predict_input_refuse_invalid_UTF8()
    {
        var sup = Path.Combine(Paths.EmbeddingFixtures, "sup.bin");
        Paths.RequireFixture(sup, "reference embeddings");
        var path = Write("test.txt", "__label__work fine\n__label__work caf\xe9\n");
        using (var model = FastTextModel.Load(sup))
            Assert.Equal(2, Fails(path, () => model.Test(path)).LineNumber);
        var (code, _, err) = CliRunner.Run("text", "predict", "--model", sup, "--input", path);
        // Exit 2 is the CLI's "named error" code; the console wraps long lines, so the path is looked for unwrapped.
        Assert.True(code == 2, $"exit {code}: {err}");
        Assert.Contains(path, err.Replace("\n", "").Replace("\r", ""));
        Assert.Contains("line 2 (byte offset 36)", string.Join(" ", err.Split(["\r\n", "\n"], StringSplitOptions.None).Select(l => l.Trim())));
    }
}
