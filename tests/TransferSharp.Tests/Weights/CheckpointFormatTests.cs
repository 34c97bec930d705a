using System.IO.Compression;
using System.Text;
using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Weights;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Weights;

/// <summary>Reading and writing checkpoint files: safetensors, PyTorch zip and legacy, hostile and corrupt files.</summary>
[Trait("Category", "Weights")]
public class CheckpointFormatTests
{
    // ------------------------------------------------------------------ safetensors

    [Fact]
    public void Safetensors_round_trip_keeps_every_dtype_shape_value_and_metadata()
    {
        using var scope = NewDisposeScope();
        var dir = Paths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "all.safetensors");
            var tensors = new Dictionary<string, Tensor>
            {
                ["f32"] = randn(3, 4),
                ["f64"] = randn(2, 2, dtype: float64),
                ["f16"] = randn(5, dtype: float16),
                ["bf16"] = randn(2, 3, dtype: bfloat16),
                ["i64"] = tensor(new long[] { long.MinValue, 0, long.MaxValue }),
                ["i32"] = tensor(new[] { int.MinValue, 7 }),
                ["i16"] = tensor(new short[] { -300, 300 }),
                ["i8"] = tensor(new sbyte[] { -7, 8 }),
                ["u8"] = tensor(new byte[] { 0, 255 }),
                ["bool"] = tensor(new[] { true, false, true }),
                ["scalar"] = tensor(3.25f),
                ["empty"] = zeros(0, 3),
                ["strided"] = arange(12, dtype: float32).reshape(3, 4).t(), // written contiguous
            };
            var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓" };
            SafeTensors.Write(path, tensors, metadata);

            Assert.Single(Directory.GetFiles(dir)); // no temporary file left behind
            using var back = SafeTensors.Read(path);
            Assert.Equal(tensors.Keys, back.Keys);
            Assert.Equal(metadata, back.Metadata);
            foreach (var (name, t) in tensors)
            {
                Assert.Equal(t.dtype, back[name].dtype);
                Assert.Equal(t.shape, back[name].shape);
                Assert.True(WeightFixtures.Same(t, back[name]), $"{name} differs after the round trip");
            }
            // The data section starts 8-byte aligned.
            var headerLength = BitConverter.ToUInt64(File.ReadAllBytes(path).AsSpan(0, 8));
            Assert.Equal(0UL, headerLength % 8);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Safetensors_written_by_python_from_the_spec_loads_and_gives_pytorchs_outputs()
    {
        using var scope = NewDisposeScope();
        using var state = Checkpoint.Read(WeightFixtures.File("tiny_densenet_f16.safetensors"));
        Assert.Equal("pt", state.Metadata["format"]);
        Assert.Equal(ScalarType.Float16, state["features.conv0.weight"].dtype);
        using var model = WeightFixtures.TinyDenseNet();
        var report = StateDictLoader.Load(model, state);
        Assert.True(report.IsExact, report.ToString());
        Assert.Equal(ScalarType.Float32, model.state_dict()["features.conv0.weight"].dtype);
        double d = WeightFixtures.MaxAbsDiff(WeightFixtures.Logits(model), WeightFixtures.Expected.LogitsF16);
        Assert.True(d < 1e-4, $"logits differ from PyTorch's by {d}");
    }

    [Theory]
    [InlineData("header longer than the file", 0)]
    [InlineData("header not JSON", 1)]
    [InlineData("unknown dtype", 2)]
    [InlineData("offsets out of bounds", 3)]
    [InlineData("shape disagrees with offsets", 4)]
    [InlineData("overlapping tensors", 5)]
    [InlineData("absurd shape", 6)]
    [InlineData("trailing bytes", 7)]
    public void Corrupt_safetensors_headers_are_named_problems(string problem, int variant)
    {
        var dir = Paths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "bad.safetensors");
            string header = variant switch
            {
                1 => "{\"a\": [1, 2",
                2 => "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                3 => "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}",
                4 => "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                5 => "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                6 => "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
                7 => "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                _ => "{}",
            };
            var h = Encoding.UTF8.GetBytes(header);
            using (var fs = File.Create(path))
            {
                fs.Write(BitConverter.GetBytes(variant == 0 ? (ulong)h.Length + 1000 : (ulong)h.Length));
                fs.Write(h);
                fs.Write(new byte[8]);
            }
            var e = Assert.Throws<CheckpointFormatException>(() => SafeTensors.Read(path));
            Assert.Contains(path, e.Message);
            Assert.Equal(path, e.FilePath);
            _ = problem;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ------------------------------------------------------------------ PyTorch checkpoints

    [Theory]
    [InlineData("tiny_densenet.pth")]            // zip format, current names
    [InlineData("tiny_densenet_legacy.pth")]     // legacy format, legacy DenseNet names
    [InlineData("tiny_densenet_wrapped.pth")]    // {"state_dict": {"module.…"}, "epoch": …}
    public void PyTorch_checkpoints_load_and_give_pytorchs_outputs(string file)
    {
        using var scope = NewDisposeScope();
        using var model = WeightFixtures.TinyDenseNet();
        var loaded = PretrainedWeights.LoadFile(model, WeightFixtures.File(file));
        Assert.True(loaded.Report.IsExact, loaded.Report.ToString());
        // The legacy file predates BatchNorm's batch counters (as torchvision's real one does).
        int counters = WeightFixtures.Expected.StateDict.Keys.Count(k => k.EndsWith("num_batches_tracked"));
        Assert.Equal(WeightFixtures.Expected.StateDict.Count - (file.Contains("legacy") ? counters : 0), loaded.Report.Loaded.Count);
        double d = WeightFixtures.MaxAbsDiff(WeightFixtures.Logits(model), WeightFixtures.Expected.Logits);
        Assert.True(d < 1e-5, $"{file}: logits differ from PyTorch's by {d}");
        using var x = WeightFixtures.Input();
        using (no_grad())
        {
            double df = WeightFixtures.MaxAbsDiff(model.PooledFeatures(x), WeightFixtures.Expected.Features);
            Assert.True(df < 1e-5, $"{file}: features differ from PyTorch's by {df}");
        }
        if (file.Contains("legacy"))
            Assert.Contains(loaded.Report.Renamed, r => r.From == "features.denseblock1.denselayer1.norm.1.weight" && r.To == "features.denseblock1.denselayer1.norm1.weight");
        if (file.Contains("wrapped"))
        {
            Assert.Contains(loaded.Report.Renamed, r => r.From == "module.features.conv0.weight" && r.To == "features.conv0.weight");
            Assert.Equal("7", loaded.Metadata["epoch"]);
            Assert.Equal("tiny_densenet", loaded.Metadata["arch"]);
        }
        // The counters come from the file too, or start at zero when it has none.
        Assert.Equal(file.Contains("legacy") ? 0L : 5L, model.state_dict()["features.norm0.num_batches_tracked"].item<long>());
    }

    [Theory]
    [InlineData("views.pth")]
    [InlineData("views_legacy.pth")]
    public void Storage_views_offsets_strides_and_dtypes_read_exactly(string file)
    {
        using var scope = NewDisposeScope();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(WeightFixtures.File("views_expected.json")));
        using var state = Checkpoint.Read(WeightFixtures.File(file));
        var expected = doc.RootElement.EnumerateObject().ToList();
        Assert.Equal(expected.Select(e => e.Name), state.Keys);
        foreach (var e in expected)
        {
            var t = state[e.Name];
            var dtype = e.Value.GetProperty("dtype").GetString();
            Assert.Equal(dtype, t.dtype switch
            {
                ScalarType.Float32 => "float32", ScalarType.Float64 => "float64", ScalarType.Float16 => "float16",
                ScalarType.BFloat16 => "bfloat16", ScalarType.Int64 => "int64", ScalarType.Int32 => "int32",
                ScalarType.Int16 => "int16", ScalarType.Int8 => "int8", ScalarType.Byte => "uint8", ScalarType.Bool => "bool",
                _ => t.dtype.ToString(),
            });
            Assert.Equal(e.Value.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()), t.shape);
            var want = e.Value.GetProperty("values").EnumerateArray().Select(v => v.ValueKind switch
            {
                JsonValueKind.True => 1.0, JsonValueKind.False => 0.0, _ => v.GetDouble(),
            }).ToArray();
            var got = t.numel() == 0 ? [] : t.to(float64).contiguous().data<double>().ToArray();
            Assert.Equal(want, got);
        }
        Assert.Equal("3", state.Metadata["epoch"]);
        Assert.Equal("views fixture", state.Metadata["note"]);
    }

    // ------------------------------------------------------------------ hostile pickles

    private const string Marker = "/tmp/transfersharp-hostile-pickle-ran";

    [Fact]
    public void A_checkpoint_whose_pickle_calls_posix_system_is_refused_and_nothing_runs()
    {
        File.Delete(Marker);
        var path = WeightFixtures.File("hostile_posix_system.pth");
        var e = Assert.Throws<UnsafeCheckpointException>(() => Checkpoint.Read(path));
        Assert.Equal("posix.system", e.GlobalName);
        Assert.Contains(path, e.Message);
        Assert.Contains("posix.system", e.Message);
        Assert.Contains("nothing in it was executed", e.Message);
        Assert.False(File.Exists(Marker));
    }

    /// <summary>Pickles that would run code if Python unpickled them, written opcode by opcode.</summary>
    public static TheoryData<string, string, byte[]> HostilePickles()
    {
        byte[] P(string s) => Encoding.Latin1.GetBytes(s);
        var cmd = $"touch {Marker}";
        var data = new TheoryData<string, string, byte[]>
        {
            // protocol 0: GLOBAL os.system, a tuple argument, REDUCE
            { "GLOBAL os.system + REDUCE", "os.system", P($"cos\nsystem\n(S'{cmd}'\ntR.") },
            { "GLOBAL builtins.eval + REDUCE", "builtins.eval", P($"cbuiltins\neval\n(S'__import__(\"os\").system(\"{cmd}\")'\ntR.") },
            { "GLOBAL posix.system + REDUCE", "posix.system", P($"cposix\nsystem\n(S'{cmd}'\ntR.") },
            // protocol 0: INST (class lookup and call in one opcode)
            { "INST subprocess.Popen", "subprocess.Popen", P($"(S'{cmd}'\nisubprocess\nPopen\n.") },
            // a state dict whose value hides the call
            { "nested in a dict", "os.system", P($"(dp0\nS'w'\ncos\nsystem\n(S'{cmd}'\ntRs.") },
            { "GLOBAL builtins.exec + REDUCE", "builtins.exec", P($"cbuiltins\nexec\n(S'import os; os.system(\"{cmd}\")'\ntR.") },
            { "getattr(os, 'system')", "builtins.getattr", P($"cbuiltins\ngetattr\n(cos\nS'system'\ntR(S'{cmd}'\ntR.") },
            // protocol 1: OBJ (MARK, class, arguments, OBJ)
            { "OBJ os.system", "os.system", P($"(cos\nsystem\nS'{cmd}'\no.") },
            // BUILD: the state of an allowed object is a hostile call (__setstate__ would run it)
            { "BUILD with a hostile state", "os.system", P($"ccollections\nOrderedDict\n)Rcos\nsystem\n(S'{cmd}'\ntRb.") },
            // protocol 2: NEWOBJ of a class that runs a command when constructed
            { "NEWOBJ subprocess.Popen", "subprocess.Popen", P($"\u0080\u0002csubprocess\nPopen\nS'{cmd}'\n\u0085\u0081.") },
            // copyreg's extension registry names globals by number: nothing may be looked up through it
            { "EXT1 copyreg extension", "copyreg extension 1", [0x80, 0x02, 0x82, 0x01, (byte)'.'] },
            { "EXT2 copyreg extension", "copyreg extension 513", [0x80, 0x02, 0x83, 0x01, 0x02, (byte)'.'] },
            { "EXT4 copyreg extension", "copyreg extension 16909060", [0x80, 0x02, 0x84, 0x04, 0x03, 0x02, 0x01, (byte)'.'] },
        };
        // protocol 4: STACK_GLOBAL with the names as short unicode strings
        var stackGlobal = new List<byte> { 0x80, 0x04 };
        void Short(string s) { stackGlobal.Add(0x8c); stackGlobal.Add((byte)s.Length); stackGlobal.AddRange(Encoding.ASCII.GetBytes(s)); }
        Short("os");
        Short("system");
        stackGlobal.Add(0x93);
        Short(cmd);
        stackGlobal.Add(0x85); // TUPLE1
        stackGlobal.Add((byte)'R');
        stackGlobal.Add((byte)'.');
        data.Add("STACK_GLOBAL os.system (protocol 4)", "os.system", stackGlobal.ToArray());
        return data;
    }

    [Theory]
    [MemberData(nameof(HostilePickles))]
    public void Pickles_that_would_run_code_are_refused_in_zip_and_legacy_files(string what, string global, byte[] pickle)
    {
        File.Delete(Marker);
        var dir = Paths.NewTempDir();
        try
        {
            // As the data.pkl of a torch zip archive.
            var zipPath = Path.Combine(dir, "evil.pth");
            using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
            {
                using (var s = zip.CreateEntry("evil/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(pickle);
                using (var s = zip.CreateEntry("evil/version", CompressionLevel.NoCompression).Open()) s.Write("3\n"u8);
            }
            var e = Assert.Throws<UnsafeCheckpointException>(() => Checkpoint.Read(zipPath));
            Assert.Equal(global, e.GlobalName);
            Assert.Contains(zipPath, e.Message);

            // As the object pickle of a legacy file (after a valid magic number, protocol and sys info).
            if (pickle[0] == 0x80)
            {
                var legacy = Path.Combine(dir, "evil_legacy.pth");
                File.WriteAllBytes(legacy, [.. LegacyHeader(), .. pickle]);
                var e2 = Assert.Throws<UnsafeCheckpointException>(() => Checkpoint.Read(legacy));
                Assert.Equal(global, e2.GlobalName);
            }
            // A bare pickle file is not a checkpoint, but must still be refused cleanly.
            var bare = Path.Combine(dir, "evil.bin");
            File.WriteAllBytes(bare, pickle);
            Assert.ThrowsAny<CheckpointException>(() => Checkpoint.Read(bare));
            Assert.False(File.Exists(Marker), $"{what}: the marker file exists");
            _ = what;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>The first three pickles of a legacy checkpoint, copied from views_legacy.pth.</summary>
    private static byte[] LegacyHeader()
    {
        var bytes = File.ReadAllBytes(WeightFixtures.File("views_legacy.pth"));
        // magic (LONG1 + STOP), protocol (BININT2 + STOP), sys_info (a dict + STOP): find the third STOP of protocol-2 pickles.
        int stops = 0, i = 0;
        for (; i < bytes.Length && stops < 3; i++)
        {
            if (bytes[i] == (byte)'.' && i + 1 < bytes.Length && bytes[i + 1] == 0x80) stops++;
        }
        return bytes[..i];
    }

    /// <summary>{'w': _rebuild_tensor_v2(storage('0', numel), 0, size, stride, False, OrderedDict())} in protocol 0.</summary>
    private static byte[] TensorPickle(long storageNumel, string size, string stride) => Encoding.ASCII.GetBytes(
        "(dp0\nS'w'\nctorch._utils\n_rebuild_tensor_v2\n("
        + $"(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nI{storageNumel}\ntQ"
        + $"I0\n({size}t({stride}tI00\nccollections\nOrderedDict\n)RtRs.");

    [Theory]
    [InlineData("a broadcast view of 10^12 elements", 1L, "I1000000000000\n", "I0\n")]
    [InlineData("a storage of 2^40 elements in 4 bytes", 1099511627776L, "I1\n", "I1\n")]
    [InlineData("a view past the end of its storage", 1L, "I4\n", "I1\n")]
    [InlineData("a negative stride", 1L, "I1\n", "I-1\n")]
    public void Absurd_sizes_are_refused_before_anything_is_allocated(string what, long storageNumel, string size, string stride)
    {
        var dir = Paths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "absurd.pth");
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            {
                using (var s = zip.CreateEntry("absurd/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(TensorPickle(storageNumel, size, stride));
                using (var s = zip.CreateEntry("absurd/data/0", CompressionLevel.NoCompression).Open()) s.Write(new byte[4]);
            }
            var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(path));
            Assert.Contains(path, e.Message);
            _ = what;

            // The same pickle with a sane tensor loads, so the refusal above is about the sizes.
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                zip.GetEntry("absurd/data.pkl")!.Delete();
                using var s = zip.CreateEntry("absurd/data.pkl", CompressionLevel.NoCompression).Open();
                s.Write(TensorPickle(1, "I1\n", "I1\n"));
            }
            using var state = Checkpoint.Read(path);
            Assert.Equal([1L], state["w"].shape);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    public static TheoryData<string, byte[]> AdversarialPickles()
    {
        const int n = 200_000;
        var manyMarks = new List<byte> { 0x80, 0x02 };
        for (int i = 0; i < n; i++) manyMarks.AddRange([(byte)'K', 1]);
        for (int i = 0; i < n; i++) manyMarks.Add((byte)'(');
        manyMarks.Add((byte)'.');
        var deepLists = new List<byte> { 0x80, 0x02 };
        for (int i = 0; i < n; i++) deepLists.Add((byte)']');
        for (int i = 1; i < n; i++) deepLists.Add((byte)'a');
        deepLists.Add((byte)'.');
        var hugeString = new List<byte> { 0x80, 0x04, 0x8d };
        hugeString.AddRange(BitConverter.GetBytes(1L << 40));
        hugeString.Add((byte)'.');
        return new()
        {
            { "200k items under 200k marks", manyMarks.ToArray() },
            { "200k nested lists", deepLists.ToArray() },
            { "a 1 TB string in a small file", hugeString.ToArray() },
            { "memo read before write", [0x80, 0x02, (byte)'h', 7, (byte)'.'] },
            { "unknown opcode", [0x80, 0x02, 0xff, (byte)'.'] },
        };
    }

    [Theory]
    [MemberData(nameof(AdversarialPickles))]
    public void Adversarial_pickles_fail_fast_with_a_typed_error(string what, byte[] pickle)
    {
        var dir = Paths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "adversarial.pth");
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            using (var s = zip.CreateEntry("a/data.pkl", CompressionLevel.NoCompression).Open())
                s.Write(pickle);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(path));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{what}: took {clock.Elapsed}");
            Assert.Contains(path, e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ------------------------------------------------------------------ truncated and damaged files

    public static TheoryData<string> GoodFiles() => new()
    {
        "tiny_densenet.pth", "tiny_densenet_legacy.pth", "tiny_densenet_f16.safetensors", "views.pth", "views_legacy.pth",
    };

    [Theory]
    [MemberData(nameof(GoodFiles))]
    public void Truncated_files_give_a_typed_error_naming_the_file(string file)
    {
        var bytes = File.ReadAllBytes(WeightFixtures.File(file));
        var dir = Paths.NewTempDir();
        try
        {
            foreach (var length in new[] { 0, 1, 7, 8, 9, 30, 100, bytes.Length / 4, bytes.Length / 2, bytes.Length - 100, bytes.Length - 1 })
            {
                var path = Path.Combine(dir, $"cut{length}{Path.GetExtension(file)}");
                File.WriteAllBytes(path, bytes[..length]);
                var e = Assert.ThrowsAny<CheckpointException>(() => { using var _ = Checkpoint.Read(path); });
                Assert.Contains(path, e.Message);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [MemberData(nameof(GoodFiles))]
    public void Bit_flipped_files_load_or_give_a_typed_error_never_anything_else(string file)
    {
        var bytes = File.ReadAllBytes(WeightFixtures.File(file));
        var dir = Paths.NewTempDir();
        var rng = new Random(1234);
        int failures = 0;
        try
        {
            var path = Path.Combine(dir, "flipped" + Path.GetExtension(file));
            // Every byte of the first 600 (headers and pickles live there), then random ones.
            var positions = Enumerable.Range(0, Math.Min(600, bytes.Length)).Concat(Enumerable.Range(0, 200).Select(_ => rng.Next(bytes.Length)));
            foreach (var pos in positions)
            {
                var copy = (byte[])bytes.Clone();
                copy[pos] ^= (byte)(1 << rng.Next(8));
                File.WriteAllBytes(path, copy);
                using var scope = NewDisposeScope();
                try
                {
                    using var state = Checkpoint.Read(path);
                }
                catch (CheckpointException e)
                {
                    Assert.Contains(path, e.Message);
                    failures++;
                }
            }
            Assert.True(failures > 0, "no flipped byte was detected at all");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_missing_file_and_a_non_checkpoint_are_told_apart()
    {
        var dir = Paths.NewTempDir();
        try
        {
            Assert.Throws<FileNotFoundException>(() => Checkpoint.Read(Path.Combine(dir, "nope.pth")));
            var text = Path.Combine(dir, "notes.pth");
            File.WriteAllText(text, "these are not weights");
            var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(text));
            Assert.Contains("not a PyTorch checkpoint", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
