using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using TransferSharp.IO;
using TransferSharp.Tests.Support;
using TransferSharp.Text;
using TransferSharp.Text.FastText;
using TransferSharp.Weights;
using Xunit;

namespace TransferSharp.Tests.Reliability;

/// <summary>Format corners found by the reliability review: pickle's big-integer opcodes, fastText files from before
/// the format had a version, control bytes in messages, and the sweeping of our own debris.</summary>
[Trait("Category", "Reliability")]
public sealed class FormatEdgeTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    // ------------------------------------------------------------------ pickle LONG1 / LONG4

    /// <summary>pickle's LONG1 (0x8a) or LONG4 (0x8b): little-endian two's complement, as Python writes ints of 2^31 and more.</summary>
    private static string Long(long value, bool four)
    {
        var bytes = new System.Numerics.BigInteger(value).ToByteArray();
        var prefix = four ? [0x8b, .. BitConverter.GetBytes(bytes.Length)] : new byte[] { 0x8a, (byte)bytes.Length };
        return Encoding.Latin1.GetString([.. prefix, .. bytes]);
    }

    /// <summary>{'w': _rebuild_tensor_v2(storage('0', numel), 0, size, stride, False, OrderedDict())}, ints as given.</summary>
    private string Checkpoint(string numel, string size, string stride, int storageFloats)
    {
        var pickle = Encoding.Latin1.GetBytes("(dp0\nS'w'\nctorch._utils\n_rebuild_tensor_v2\n("
            + $"(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\n{numel}tQ"
            + $"I0\n({size}t({stride}tI00\nccollections\nOrderedDict\n)RtRs.");
        var path = Path.Combine(_dir, $"long-{Guid.NewGuid():N}.pth");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("c/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(pickle);
        using (var s = zip.CreateEntry("c/data/0", CompressionLevel.NoCompression).Open()) s.Write(new byte[storageFloats * 4]);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Big_integer_opcodes_are_accepted_for_element_counts_and_sizes(bool four)
    {
        using (var state = TransferSharp.Weights.Checkpoint.Read(Checkpoint(Long(6, four), Long(2, four) + Long(3, four), Long(3, four) + "I1\n", 6)))
            Assert.Equal([2L, 3L], state["w"].shape);

        // Bounds still hold for values that need the big opcodes: 2^31 elements in a 24-byte storage, a 2^40-element view.
        var e = Assert.Throws<CheckpointFormatException>(() => TransferSharp.Weights.Checkpoint.Read(Checkpoint(Long(1L << 31, four), "I1\n", "I1\n", 6)));
        Assert.Contains("2147483648", e.Message);
        e = Assert.Throws<CheckpointFormatException>(() => TransferSharp.Weights.Checkpoint.Read(Checkpoint("I6\n", Long(1L << 40, four), "I0\n", 6)));
        Assert.Contains(".pth", e.Message);
        // Beyond 64 bits, said as such.
        var huge = Encoding.Latin1.GetString([0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        e = Assert.Throws<CheckpointFormatException>(() => TransferSharp.Weights.Checkpoint.Read(Checkpoint("I6\n", huge, "I1\n", 6)));
        Assert.Contains("beyond 64 bits", e.Message);
    }

    // ------------------------------------------------------------------ fastText before 0.9's format

    /// <summary>
    /// Rewrites a fastText 0.9 unsupervised model in the layout of fastText before the format had a magic number
    /// (what gensim's _fasttext_bin reads as the "old format"): no magic/version, no pruning-table size in the
    /// dictionary, no quantization flags before the matrices.
    /// </summary>
    internal static byte[] ToPreMagic(byte[] v12)
    {
        var old = new List<byte>();
        int p = 8;
        old.AddRange(v12.AsSpan(p, FastTextReader.HeaderBytes).ToArray());
        p += FastTextReader.HeaderBytes;
        int size = BinaryPrimitives.ReadInt32LittleEndian(v12.AsSpan(p));
        old.AddRange(v12.AsSpan(p, 20).ToArray()); // size, nwords, nlabels, ntokens
        long pruneIdx = BinaryPrimitives.ReadInt64LittleEndian(v12.AsSpan(p + 20));
        Assert.Equal(-1, pruneIdx);
        p += 28;
        int start = p;
        for (int i = 0; i < size; i++) p = Array.IndexOf(v12, (byte)0, p) + 1 + 9;
        old.AddRange(v12.AsSpan(start, p - start).ToArray());
        Assert.Equal(0, v12[p]); // not quantized
        p++;
        long rows = BinaryPrimitives.ReadInt64LittleEndian(v12.AsSpan(p)), cols = BinaryPrimitives.ReadInt64LittleEndian(v12.AsSpan(p + 8));
        int matrix = (int)(16 + rows * cols * 4);
        old.AddRange(v12.AsSpan(p, matrix).ToArray());
        p += matrix;
        Assert.Equal(0, v12[p]);
        p++;
        old.AddRange(v12.AsSpan(p).ToArray());
        return old.ToArray();
    }

    [Fact]
    public void A_fasttext_model_from_before_the_versioned_format_loads_as_gensim_loads_it()
    {
        var fixture = Path.Combine(Paths.EmbeddingFixtures, "ft.bin");
        var oldPath = Path.Combine(_dir, "old.bin");
        File.WriteAllBytes(oldPath, ToPreMagic(File.ReadAllBytes(fixture)));

        using var current = FastTextModel.Load(fixture);
        using var old = FastTextModel.Load(oldPath);
        Assert.Equal(FastTextReader.PreMagicVersion, old.Version);
        Assert.Equal(current.Words, old.Words);
        foreach (var word in new[] { current.Words[0], current.Words[^1], "unseenwordxyz" })
            Assert.Equal(current.GetWordVector(word), old.GetWordVector(word));
        // Detected by content, as the vectors commands open it.
        using var vectors = WordVectors.Load(oldPath);
        Assert.Equal(current.Words.Count, vectors.Count);
    }

    [Fact]
    public void A_pre_versioned_fasttext_classifier_is_refused_by_name_and_no_message_prints_control_bytes()
    {
        // The header of a supervised model in the old layout, then nothing: refused as an old classifier, not as text.
        var header = File.ReadAllBytes(Path.Combine(Paths.EmbeddingFixtures, "sup.bin")).AsSpan(8, FastTextReader.HeaderBytes + 64).ToArray();
        var path = Path.Combine(_dir, "old-sup.bin");
        File.WriteAllBytes(path, header);
        var e = Assert.Throws<WordVectorsFormatException>(() => FastTextModel.Load(path));
        Assert.Contains("classifier from before", e.Message);
        var e2 = Assert.ThrowsAny<InvalidFileException>(() => WordVectors.Load(path));
        Assert.DoesNotContain(e2.Message, c => c < 0x20 && c != '\n' || c == 0x7f);

        // Bytes that are neither format reach the text reader; its message shows control bytes escaped.
        var binary = Path.Combine(_dir, "noise.txt");
        File.WriteAllBytes(binary, [0x1b, (byte)'[', (byte)'2', (byte)'J', 0x07, (byte)' ', (byte)'x', 0x00, 0x01, (byte)'\n']);
        var e3 = Assert.ThrowsAny<InvalidFileException>(() => WordVectors.Load(binary));
        Assert.DoesNotContain(e3.Message, c => c < 0x20 && c != '\n' || c == 0x7f);
        Assert.Contains(binary, e3.Message);
    }

    // ------------------------------------------------------------------ stale temporaries and locks

    private static int DeadProcessId()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public void Writing_a_file_sweeps_only_our_temporaries_of_processes_that_are_gone()
    {
        int dead = DeadProcessId();
        var guid = Guid.NewGuid().ToString("N");
        var stale = Path.Combine(_dir, $".vectors.bin.tmp-{dead}-{guid}");
        var staleDir = Path.Combine(_dir, $".f.parquet.partial.tmp-{dead}-{guid}");
        var live = Path.Combine(_dir, $".model.safetensors.tmp-{Environment.ProcessId}-{guid}");
        var notOurs = new[] { Path.Combine(_dir, $".notes.tmp-{dead}-short"), Path.Combine(_dir, $"visible.tmp-{dead}-{guid}"), Path.Combine(_dir, "x.partial") };
        foreach (var f in notOurs.Append(stale).Append(live)) File.WriteAllText(f, "x");
        Directory.CreateDirectory(staleDir);

        AtomicFile.WriteText(Path.Combine(_dir, "out.txt"), "done");

        Assert.False(File.Exists(stale));
        Assert.False(Directory.Exists(staleDir));
        Assert.True(File.Exists(live), "a temporary of a running process is never touched");
        Assert.All(notOurs, f => Assert.True(File.Exists(f), f));
        Assert.Equal("done", File.ReadAllText(Path.Combine(_dir, "out.txt")));
    }

    [Fact]
    public void Lock_files_are_removed_after_use_and_only_unheld_ones_are_swept()
    {
        var locks = Path.Combine(_dir, "locks");
        Directory.CreateDirectory(locks);
        var stale = Path.Combine(locks, "a.pth.0123.lock");
        var held = Path.Combine(locks, "b.pth.4567.lock");
        var foreign = Path.Combine(locks, "c.lock");
        File.WriteAllBytes(stale, []);
        File.WriteAllText(foreign, "someone else's lock with content");
        using (new FileStream(held, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            Assert.Equal(1, HttpDownloader.SweepStaleLocks(locks));
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(held), "a lock held by a running download is never touched");
            Assert.True(File.Exists(foreign));
        }
    }
}
