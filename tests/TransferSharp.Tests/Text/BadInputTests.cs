using System.Buffers.Binary;
using System.Text;
using TransferSharp.Tests.Support;
using TransferSharp.Text;
using TransferSharp.Text.FastText;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// Hostile and broken vector files: every one must end in a <see cref="WordVectorsFormatException"/> naming the
/// file (and the line or byte where it helps) or in documented behaviour — never a crash, a hang, or an
/// allocation the file cannot justify.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private static string Reference(string name) => Path.Combine(Paths.Shared, "reference", "embeddings", name);

    public void Dispose() => _temp.Dispose();

    private static WordVectorsFormatException Fails(string path, WordVectorsLoadOptions? options = null)
    {
        var e = Assert.Throws<WordVectorsFormatException>(() => WordVectors.Load(path, options).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    [Fact]
    public void Header_promising_more_words_than_the_text_holds()
    {
        var e = Fails(_temp.Write("lie.txt", "5 2\na 1 2\nb 3 4\n"));
        Assert.Contains("declares 5 words", e.Message);
        Assert.Contains("holds only 2", e.Message);
    }

    [Fact]
    public void Header_promising_fewer_words_than_the_text_holds()
    {
        var path = _temp.Write("lie2.txt", "1 2\na 1 2\nb 3 4\n");
        Assert.Contains("declares 1 words but the file holds 2", Fails(path).Message);
        using var first = WordVectors.Load(path, new WordVectorsLoadOptions { Limit = 1 });
        Assert.Equal(["a"], first.Words);
    }

    [Fact]
    public void Header_lying_about_the_dimension_names_the_first_line()
    {
        var e = Fails(_temp.Write("dim.txt", "2 3\na 1 2\nb 3 4\n"));
        Assert.Equal(2, e.LineNumber);
        Assert.Contains("2 values, expected 3", e.Message);
    }

    [Fact]
    public void Wrong_value_count_reports_the_line()
    {
        var text = new StringBuilder("4 3\n");
        text.Append("a 1 2 3\nb 1 2 3\nc 1 2\nd 1 2 3\n");
        var e = Fails(_temp.Write("count.txt", text.ToString()));
        Assert.Equal(4, e.LineNumber);
        var e2 = Fails(_temp.Write("count2.txt", "a 1 2 3\nb 1 2 3 4\n"));
        Assert.Equal(2, e2.LineNumber);
        Assert.Contains("4 values, expected 3", e2.Message);
        var e3 = Fails(_temp.Write("nan.txt", "a 1 2 3\nb 1 x2 3\n"));
        Assert.Equal(2, e3.LineNumber);
        Assert.Contains("'x2' is not a number", e3.Message);
    }

    [Fact]
    public void Error_in_a_late_chunk_reports_its_true_line_number()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 200_000; i++) sb.Append($"w{i} 0.125 0.5 -1.25 2\n");
        sb.Append("bad 1 2 3\n");
        var e = Fails(_temp.Write("late.txt", sb.ToString()), new WordVectorsLoadOptions { Threads = 4 });
        Assert.Equal(200_001, e.LineNumber);
    }

    [Fact]
    public void Invalid_utf8_reports_the_byte_offset_or_is_replaced()
    {
        var bytes = Encoding.UTF8.GetBytes("2 2\ngood 1 2\nba").Concat(new byte[] { 0xFF, 0xFE }).Concat(Encoding.UTF8.GetBytes("d 3 4\n")).ToArray();
        var path = _temp.Write("utf.txt", bytes);
        var e = Fails(path);
        Assert.Equal(Encoding.UTF8.GetByteCount("2 2\ngood 1 2\nba"), e.ByteOffset);
        Assert.Equal(3, e.LineNumber);
        Assert.Contains("FFFE", e.Message);
        using var v = WordVectors.Load(path, new WordVectorsLoadOptions { EncodingErrors = EncodingErrorMode.Replace });
        Assert.Equal("ba\uFFFD\uFFFDd", v.Words[1]);
        Assert.Equal(1, v.LoadInfo.InvalidUtf8Words);

        var binary = Encoding.ASCII.GetBytes("1 2\n").Concat(new byte[] { (byte)'x', 0xC3, (byte)' ' }).Concat(new byte[8]).ToArray();
        var be = Fails(_temp.Write("utf.bin", binary));
        Assert.Equal(5, be.ByteOffset);
    }

    [Fact]
    public void Absurd_dimensions_are_refused_before_allocating()
    {
        Assert.Contains("impossible", Fails(_temp.Write("huge.txt", "10 999999999\na 1\n")).Message);
        Assert.Contains("impossible", Fails(_temp.Write("huge.bin", Encoding.ASCII.GetBytes("3 2000000000\nab ").Concat(new byte[16]).ToArray())).Message);
        var many = Fails(_temp.Write("many.bin", Encoding.ASCII.GetBytes("2000000000 300\nab ").Concat(new byte[1200]).ToArray()));
        Assert.Contains("truncated or the header is wrong", many.Message);
    }

    [SkippableFact]
    public void Truncated_word2vec_binary_at_any_point()
    {
        Paths.RequireFixture(Reference("w2v.bin"), "reference embeddings");
        var full = File.ReadAllBytes(Reference("w2v.bin"));
        var rng = new Random(11);
        foreach (int cut in new[] { 5, 9, 10, 60, 137, 138, 139, 140 }.Concat(Enumerable.Range(0, 30).Select(_ => rng.Next(10, full.Length - 1))))
        {
            var path = _temp.Write($"cut{cut}.bin", full[..cut]);
            var e = Fails(path, new WordVectorsLoadOptions { Format = VectorFileFormat.Word2VecBinary });
            Assert.Matches("truncated|impossible|header", e.Message);
        }
        var extra = _temp.Write("extra.bin", full.Concat(Encoding.ASCII.GetBytes("junk 1234")).ToArray());
        Assert.Contains("bytes follow", Fails(extra).Message);
    }

    [SkippableFact]
    public void Truncated_or_corrupted_fasttext_models_fail_cleanly()
    {
        Paths.RequireFixture(Reference("sup.ftz"), "reference embeddings");
        foreach (var name in new[] { "sup.ftz", "ft.bin" })
        {
            var full = File.ReadAllBytes(Reference(name));
            var rng = new Random(7);
            var cuts = new[] { 3, 8, 20, 60, 61, 100, 1000 }.Concat(Enumerable.Range(0, 25).Select(_ => rng.Next(8, full.Length - 1)));
            foreach (int cut in cuts)
            {
                var path = _temp.Write($"cut{cut}-{name}", full[..cut]);
                Assert.Throws<WordVectorsFormatException>(() => FastTextModel.Load(path).Dispose());
            }
            // Random bytes flipped in the header, dictionary and matrices: typed errors or a model, nothing else.
            for (int i = 0; i < 40; i++)
            {
                var bytes = (byte[])full.Clone();
                int at = rng.Next(8, Math.Min(bytes.Length, 20000));
                bytes[at] ^= (byte)(1 + rng.Next(255));
                var path = _temp.Write($"flip{i}-{name}", bytes);
                try { FastTextModel.Load(path).Dispose(); }
                catch (WordVectorsFormatException) { }
            }
        }
    }

    [SkippableFact]
    public void Unknown_version_and_wrong_magic()
    {
        Paths.RequireFixture(Reference("sup.ftz"), "reference embeddings");
        var bytes = File.ReadAllBytes(Reference("sup.ftz"));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 13);
        var e = Assert.Throws<WordVectorsFormatException>(() => FastTextModel.Load(_temp.Write("v13.ftz", bytes)));
        Assert.Contains("version 13 is not supported", e.Message);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(0), 12345);
        var m = Assert.Throws<WordVectorsFormatException>(() => FastTextModel.Load(_temp.Write("magic.ftz", bytes)));
        Assert.Contains("not a fastText model", m.Message);
        var big = File.ReadAllBytes(Reference("sup.ftz"));
        BinaryPrimitives.WriteInt32LittleEndian(big.AsSpan(8 + 13 * 4 + 8), int.MaxValue - 7); // dictionary size
        Assert.Contains("impossible", Assert.Throws<WordVectorsFormatException>(() => FastTextModel.Load(_temp.Write("dict.ftz", big))).Message);
    }

    [Fact]
    public void Empty_garbage_and_missing_files()
    {
        Fails(_temp.Write("empty.txt", ""));
        Assert.Throws<FileNotFoundException>(() => WordVectors.Load(Path.Combine(_temp.Path, "nope.txt")));
        var rng = new Random(1);
        for (int i = 0; i < 20; i++)
        {
            var junk = new byte[rng.Next(1, 5000)];
            rng.NextBytes(junk);
            var path = _temp.Write($"junk{i}", junk);
            try { WordVectors.Load(path).Dispose(); }
            catch (WordVectorsFormatException e) { Assert.Equal(path, e.FilePath); }
        }
        Assert.Contains("no numbers", Fails(_temp.Write("words.txt", "just some words\nmore words\n")).Message);
        Assert.Contains("starts with whitespace", Fails(_temp.Write("lead.txt", "a 1 2\n b 1 2\n")).Message);
    }

    [Fact]
    public void Damaged_cache_is_refused()
    {
        var path = _temp.Write("v.txt", "a 1 2\nb 3 4\n");
        using (var v = WordVectors.Load(path)) v.Save(Path.Combine(_temp.Path, "v.tswv"), VectorFileFormat.Cache);
        var bytes = File.ReadAllBytes(Path.Combine(_temp.Path, "v.tswv"));
        Assert.Contains("inconsistent", Fails(_temp.Write("cut.tswv", bytes[..^3])).Message);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), long.MaxValue / 2);
        Assert.Contains("inconsistent", Fails(_temp.Write("rows.tswv", bytes)).Message);
    }
}
