using System.Text;
using TransferSharp.Tests.Support;
using TransferSharp.Text;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>Writing, converting, caching, limits and storage options on the reference word2vec files.</summary>
public sealed class FormatTests : IDisposable
{
    private readonly string _temp = Paths.NewTempDir();
    private static string Reference(string name) => Path.Combine(Paths.Shared, "reference", "embeddings", name);

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static void RequireReference() => Paths.RequireFixture(Reference("w2v.bin"), "reference embeddings");

    [SkippableTheory]
    [InlineData("w2v.bin", VectorFileFormat.Word2VecText, "w2v.txt")]
    [InlineData("w2v.txt", VectorFileFormat.Word2VecBinary, "w2v.bin")]
    [InlineData("w2v.bin", VectorFileFormat.GloVe, "glove.txt")]
    [InlineData("glove.txt", VectorFileFormat.Word2VecBinary, "w2v.bin")]
    public void Conversion_reproduces_gensims_file_byte_for_byte(string from, VectorFileFormat to, string twin)
    {
        RequireReference();
        using var vectors = WordVectors.Load(Reference(from));
        var output = Path.Combine(_temp, "out");
        vectors.Save(output, to);
        Assert.True(File.ReadAllBytes(Reference(twin)).AsSpan().SequenceEqual(File.ReadAllBytes(output)), $"{from} → {to} differs from {twin}");
        Assert.Single(Directory.GetFiles(_temp));
    }

    [SkippableFact]
    public void FastText_vec_round_trips_and_is_detected()
    {
        RequireReference();
        using var vectors = WordVectors.Load(Reference("w2v.bin"));
        var vec = Path.Combine(_temp, "x.vec");
        vectors.Save(vec, VectorFileFormat.FastTextVec);
        Assert.EndsWith(" ", File.ReadLines(vec).Skip(1).First());
        using var back = WordVectors.Load(vec);
        Assert.Equal(VectorFileFormat.FastTextVec, back.LoadInfo.Format);
        Assert.Equal(vectors.Words, back.Words);
        for (int i = 0; i < vectors.Count; i += 97) Assert.Equal(vectors.GetVector(i), back.GetVector(i));
    }

    [SkippableFact]
    public void Formats_are_detected_from_content()
    {
        RequireReference();
        foreach (var (name, format) in new[] { ("w2v.bin", VectorFileFormat.Word2VecBinary), ("w2v.txt", VectorFileFormat.Word2VecText),
                     ("glove.txt", VectorFileFormat.GloVe), ("ft.vec", VectorFileFormat.FastTextVec), ("ft.bin", VectorFileFormat.FastTextBinary) })
        {
            using var v = WordVectors.Load(Reference(name), new WordVectorsLoadOptions { Limit = 10 });
            Assert.Equal(format, v.LoadInfo.Format);
        }
    }

    [SkippableFact]
    public void Limit_stops_early_and_keeps_file_order()
    {
        RequireReference();
        using var all = WordVectors.Load(Reference("w2v.bin"));
        foreach (var name in new[] { "w2v.bin", "w2v.txt", "glove.txt" })
        {
            using var first = WordVectors.Load(Reference(name), new WordVectorsLoadOptions { Limit = 100 });
            Assert.Equal(100, first.Count);
            Assert.True(first.LoadInfo.Truncated);
            Assert.Equal(all.Words.Take(100), first.Words);
            Assert.Equal(all.GetVector(99), first.GetVector(99));
        }
        using var limited = all.Limit(50);
        Assert.Equal(all.Words.Take(50), limited.Words);
        Assert.Equal(all.MostSimilar("the", 5, restrictVocab: 50), limited.MostSimilar("the", 5));
    }

    [SkippableFact]
    public void Cache_is_written_once_then_memory_mapped()
    {
        RequireReference();
        var cacheDir = Path.Combine(_temp, "cache");
        var options = new WordVectorsLoadOptions { CacheDirectory = cacheDir };
        using var first = WordVectors.Load(Reference("w2v.txt"), options);
        Assert.False(first.LoadInfo.FromCache);
        Assert.NotNull(first.LoadInfo.CachePath);
        Assert.Single(Directory.GetFiles(cacheDir));
        using var second = WordVectors.Load(Reference("w2v.txt"), options);
        Assert.True(second.LoadInfo.FromCache);
        Assert.True(second.LoadInfo.MemoryMapped);
        Assert.Equal(VectorFileFormat.Word2VecText, second.LoadInfo.Format);
        Assert.Equal(first.Words, second.Words);
        for (int i = 0; i < first.Count; i += 101) Assert.Equal(first.GetVector(i), second.GetVector(i));
        Assert.Equal(first.MostSimilar("computer"), second.MostSimilar("computer"));
        using var third = WordVectors.Load(first.LoadInfo.CachePath!);
        Assert.Equal(first.Count, third.Count);
        Assert.Throws<InvalidOperationException>(second.UnitNormalizeAll);
    }

    [SkippableFact]
    public void Memory_mapped_binary_and_float16_storage()
    {
        RequireReference();
        using var plain = WordVectors.Load(Reference("w2v.bin"));
        using var mapped = WordVectors.Load(Reference("w2v.bin"), new WordVectorsLoadOptions { MemoryMap = true });
        Assert.True(mapped.LoadInfo.MemoryMapped);
        Assert.Equal(plain.GetVector(1234), mapped.GetVector(1234));
        Assert.Equal(plain.MostSimilar("computer"), mapped.MostSimilar("computer"));
        using var half = WordVectors.Load(Reference("w2v.txt"), new WordVectorsLoadOptions { Precision = VectorPrecision.Float16 });
        Assert.Equal(VectorPrecision.Float16, half.Precision);
        var a = plain.GetVector(77);
        var b = half.GetVector(77);
        for (int j = 0; j < a.Length; j++) Assert.Equal(a[j], b[j], 0.01f * Math.Max(1, Math.Abs(a[j])));
        Assert.Equal(plain.Similarity("computer", "program"), half.Similarity("computer", "program"), 2e-3f);
        Assert.Equal(plain.MostSimilar("computer", 3).Select(s => s.Word), half.MostSimilar("computer", 3).Select(s => s.Word));
        Assert.Equal(plain.NearestNeighbors(["computer"], 3)[0].Select(s => s.Word), half.NearestNeighbors(["computer"], 3)[0].Select(s => s.Word));
    }

    [SkippableFact]
    public void Batched_neighbours_equal_one_query_at_a_time()
    {
        RequireReference();
        using var v = WordVectors.Load(Reference("w2v.bin"));
        var queries = v.Words.Skip(100).Take(40).ToList();
        var batched = v.NearestNeighbors(queries, 7);
        for (int q = 0; q < queries.Count; q++)
        {
            var single = v.MostSimilar(queries[q], 7);
            Assert.Equal(single.Select(s => s.Word), batched[q].Select(s => s.Word));
            for (int i = 0; i < 7; i++) Assert.Equal(single[i].Score, batched[q][i].Score, 1e-5f);
        }
        var byVector = v.NearestNeighbors(v.GetVector("computer"), 1, 3)[0];
        Assert.Equal("computer", byVector[0].Word);
        Assert.Equal(1f, byVector[0].Score, 1e-5f);
    }

    [Fact]
    public void Duplicates_keep_the_first_and_are_counted_and_multiword_keys_are_read()
    {
        var path = Path.Combine(_temp, "dup.txt");
        File.WriteAllText(path, "a 1 0\nb 0 1\n\na 5 5\nNew York 0.5 0.5\nc 1 1\r\n");
        using var v = WordVectors.Load(path);
        Assert.Equal(VectorFileFormat.GloVe, v.LoadInfo.Format);
        Assert.Equal(["a", "b", "New York", "c"], v.Words);
        Assert.Equal([1f, 0f], v["a"]);
        Assert.Equal(1, v.LoadInfo.DuplicatesSkipped);
        Assert.Equal(1, v.LoadInfo.WordsWithSpaces);
        Assert.Equal(1, v.LoadInfo.BlankLines);
        Assert.Equal([1f, 1f], v["c"]);
    }

    [Fact]
    public void Values_parse_exactly_in_any_culture_and_notation()
    {
        var path = Path.Combine(_temp, "n.txt");
        File.WriteAllText(path, "2 4\nx 1e-05 -3.4028235e+38 0.1 +2.5E3\ny nan inf -0 123456789012345678901234567890\n");
        var previous = Thread.CurrentThread.CurrentCulture;
        // A culture with a decimal comma (the test runs in invariant-globalization mode, so it is made by hand).
        var comma = (System.Globalization.CultureInfo)System.Globalization.CultureInfo.InvariantCulture.Clone();
        comma.NumberFormat.NumberDecimalSeparator = ",";
        comma.NumberFormat.NumberGroupSeparator = ".";
        Thread.CurrentThread.CurrentCulture = comma;
        try
        {
            using var v = WordVectors.Load(path);
            Assert.Equal([1e-05f, -3.4028235e+38f, 0.1f, 2500f], v["x"]);
            var y = v["y"];
            Assert.True(float.IsNaN(y[0]));
            Assert.True(float.IsPositiveInfinity(y[1]));
            Assert.True(float.IsNegative(y[2]) && y[2] == 0);
            Assert.Equal(1.2345679e29f, y[3]);
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = previous;
        }
    }

    [Fact]
    public void Parser_is_bit_exact_on_random_values()
    {
        var rng = new Random(5);
        var sb = new StringBuilder();
        var expected = new List<float>();
        for (int i = 0; i < 20000; i++)
        {
            float f = BitConverter.Int32BitsToSingle(rng.Next()) * (rng.Next(2) == 0 ? 1 : -1);
            if (!float.IsFinite(f)) continue;
            string s = rng.Next(3) switch { 0 => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture), 1 => ((double)f).ToString("G17", System.Globalization.CultureInfo.InvariantCulture), _ => f.ToString("E9", System.Globalization.CultureInfo.InvariantCulture) };
            expected.Add(float.Parse(s, System.Globalization.CultureInfo.InvariantCulture));
            sb.Append(' ').Append(s);
        }
        var path = Path.Combine(_temp, "r.txt");
        File.WriteAllText(path, $"w{sb}\n");
        using var v = WordVectors.Load(path, new WordVectorsLoadOptions { Format = VectorFileFormat.GloVe });
        var got = v["w"];
        for (int i = 0; i < expected.Count; i++) Assert.Equal(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(got[i]));
    }

    [Fact]
    public void Parallel_chunks_give_the_same_rows_as_one()
    {
        // Enough lines for several parse chunks (the text reader cuts files over 4 MB).
        var path = Path.Combine(_temp, "big.txt");
        var rng = new Random(3);
        using (var w = new StreamWriter(path))
        {
            w.Write("30000 50\n");
            for (int i = 0; i < 30000; i++)
            {
                w.Write($"w{i}");
                for (int j = 0; j < 50; j++) w.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture, $" {rng.NextSingle() - 0.5f:R}"));
                w.Write('\n');
            }
        }
        using var many = WordVectors.Load(path, new WordVectorsLoadOptions { Threads = 4 });
        using var one = WordVectors.Load(path, new WordVectorsLoadOptions { Threads = 1 });
        Assert.Equal(30000, many.Count);
        Assert.Equal(Enumerable.Range(0, 30000).Select(i => $"w{i}"), many.Words);
        for (int i = 0; i < 30000; i += 997) Assert.Equal(one.GetVector(i), many.GetVector(i));
    }

    [SkippableFact]
    public void Progress_is_reported_and_cancellation_leaves_no_file()
    {
        RequireReference();
        var stages = new List<LoadProgress>();
        using (WordVectors.Load(Reference("w2v.txt"), new WordVectorsLoadOptions { Progress = new SyncProgress(stages.Add) }))
            Assert.Contains(stages, s => s.Stage == "parsing" && s.BytesDone == s.BytesTotal && s.BytesTotal > 0);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => WordVectors.Load(Reference("w2v.txt"), new WordVectorsLoadOptions { Cancellation = cts.Token, CacheDirectory = _temp }));
        using var v = WordVectors.Load(Reference("w2v.bin"));
        Assert.ThrowsAny<OperationCanceledException>(() => v.Save(Path.Combine(_temp, "x.txt"), VectorFileFormat.Word2VecText, cts.Token));
        Assert.Empty(Directory.GetFiles(_temp));
    }

    private sealed class SyncProgress(Action<LoadProgress> report) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => report(value);
    }
}
