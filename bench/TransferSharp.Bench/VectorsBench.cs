using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TransferSharp.Text;

namespace TransferSharp.Bench;

/// <summary>
/// Word vectors: load a generated GloVe-shaped text file (default 400,000 words × 300 dims, GloVe's 5 significant
/// digits) and its word2vec-binary twin, and answer MostSimilar (one query; a batch of 1,000), against gensim 4.2's
/// <c>load_word2vec_format</c> / <c>most_similar</c> in the same run. Every measurement runs in a process of its
/// own (ours: this program again with --child) so that each peak-memory figure is that measurement's alone.
/// </summary>
public static class VectorsBench
{
    public const string Help = "word vectors: load 400k×300 GloVe text / word2vec binary and MostSimilar, vs gensim: [--dir DIR] [--words N] [--dim D] [--repeats 3] [--no-peer]";

    private const int TopN = 10;

    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--child") return Child(args[1..]);
        string dir = Path.Combine(Path.GetTempPath(), "transfersharp-bench-vectors");
        int words = 400_000, dim = 300, repeats = 3, singleQueries = 20, batch = 1000;
        bool peer = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dir": dir = args[++i]; break;
                case "--words": words = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dim": dim = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        Directory.CreateDirectory(dir);
        var (text, binary) = EnsureData(dir, words, dim);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"load average at start: {BenchUtil.LoadAverage()}");
        Console.WriteLine($"data: {text} ({new FileInfo(text).Length / 1e6:F0} MB), {binary} ({new FileInfo(binary).Length / 1e6:F0} MB)");

        var rows = new List<(string What, double Ours, double? Peer, string Unit, double? OursMb, double? PeerMb)>();
        var (textS, textMb) = MedianChild(repeats, "load", text);
        var (binS, binMb) = MedianChild(repeats, "load", binary);
        var (mapS, mapMb) = MedianChild(repeats, "load-mmap", binary);
        var cacheDir = Path.Combine(dir, "cache");
        if (Directory.Exists(cacheDir)) Directory.Delete(cacheDir, true);
        var (buildS, buildMb) = MedianChild(1, "load-cache", text, cacheDir);
        var (cacheS, cacheMb) = MedianChild(repeats, "load-cache", text, cacheDir);

        var vocabulary = File.ReadLines(text).Select(l => l[..l.IndexOf(' ')]).ToList();
        var single = Enumerable.Range(0, singleQueries).Select(i => vocabulary[(int)((long)i * vocabulary.Count / singleQueries) + 7]).ToList();
        var batchWords = Enumerable.Range(0, batch).Select(i => vocabulary[(int)((long)i * vocabulary.Count / batch) + 3]).ToList();
        var queryFile = Path.Combine(dir, "queries.json");
        File.WriteAllText(queryFile, JsonSerializer.Serialize(new { single, batch = batchWords, topn = TopN }));
        var ours = JsonDocument.Parse(RunSelf("query", binary, queryFile)).RootElement;

        JsonElement? gText = null, gBin = null, gQuery = null;
        if (peer)
        {
            BenchUtil.EnsureDebianPackages("python3-gensim");
            var script = Path.Combine(AppContext.BaseDirectory, "peers", "gensim_vectors.py");
            gText = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, "load-text", text])).RootElement;
            gBin = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, "load-bin", binary])).RootElement;
            gQuery = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, "query", binary, File.ReadAllText(queryFile)])).RootElement;
            var gensimFirst = gQuery.Value.GetProperty("batch_first").EnumerateArray().Select(e => e.GetString()).ToList();
            var oursFirst = ours.GetProperty("batch_first").EnumerateArray().Select(e => e.GetString()).ToList();
            Console.WriteLine($"same neighbours for the first batch query as gensim: {gensimFirst.SequenceEqual(oursFirst)}");
        }
        double? G(JsonElement? e, string p) => e?.GetProperty(p).GetDouble();
        rows.Add(($"load GloVe text ({words:N0} × {dim})", textS, G(gText, "load_seconds"), "s", textMb, G(gText, "load_peak_mb")));
        rows.Add(("load word2vec binary", binS, G(gBin, "load_seconds"), "s", binMb, G(gBin, "load_peak_mb")));
        rows.Add(("load word2vec binary, memory-mapped", mapS, G(gBin, "load_seconds"), "s", mapMb, G(gBin, "load_peak_mb")));
        rows.Add(("text → cache, first load (parse + write cache)", buildS, G(gText, "load_seconds"), "s", buildMb, G(gText, "load_peak_mb")));
        rows.Add(("text, later loads (cache, memory-mapped)", cacheS, G(gText, "load_seconds"), "s", cacheMb, G(gText, "load_peak_mb")));
        rows.Add(("MostSimilar, one query (median of 20)", ours.GetProperty("single_median_seconds").GetDouble() * 1000, G(gQuery, "single_median_seconds") * 1000, "ms",
            ours.GetProperty("query_peak_mb").GetDouble(), G(gQuery, "query_peak_mb")));
        rows.Add(($"MostSimilar, batch of {batch:N0} queries", ours.GetProperty("batch_seconds").GetDouble(), G(gQuery, "batch_seconds"), "s", null, null));

        Console.WriteLine($"load average at end: {BenchUtil.LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| measurement | TransferSharp | gensim 4.2 | speed-up | peak RSS ours | peak RSS gensim |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            Console.WriteLine($"| {r.What} | {r.Ours:F3} {r.Unit} | {(r.Peer is { } p ? $"{p:F3} {r.Unit}" : "—")} | {(r.Peer is { } q ? $"{q / r.Ours:F1}×" : "—")} | {Mb(r.OursMb)} | {Mb(r.PeerMb)} |");
        return 0;
    }

    private static string Mb(double? mb) => mb is { } m ? $"{m:F0} MB" : "—";


    private static (double Seconds, double PeakMb) MedianChild(int repeats, params string[] args)
    {
        var results = Enumerable.Range(0, repeats).Select(_ => JsonDocument.Parse(RunSelf(args)).RootElement)
            .Select(e => (e.GetProperty("seconds").GetDouble(), e.GetProperty("peak_mb").GetDouble())).OrderBy(x => x.Item1).ToList();
        return (results[results.Count / 2].Item1, results.Max(x => x.Item2));
    }

    private static string RunSelf(params string[] args)
    {
        var self = Environment.ProcessPath!;
        var prefix = Path.GetFileNameWithoutExtension(self) == "dotnet" ? new[] { typeof(VectorsBench).Assembly.Location } : [];
        return BenchUtil.RunPeer(self, [.. prefix, "vectors", "--child", .. args]);
    }

    private static int Child(string[] args)
    {
        var clock = Stopwatch.StartNew();
        switch (args[0])
        {
            case "load":
            case "load-mmap":
            case "load-cache":
                {
                    var options = new WordVectorsLoadOptions { MemoryMap = args[0] == "load-mmap", CacheDirectory = args[0] == "load-cache" ? args[2] : null };
                    using var v = WordVectors.Load(args[1], options);
                    double seconds = clock.Elapsed.TotalSeconds;
                    Console.WriteLine(JsonSerializer.Serialize(new { seconds, peak_mb = BenchUtil.PeakRssMb(), count = v.Count, fromCache = v.LoadInfo.FromCache }));
                    return 0;
                }
            case "query":
                {
                    using var v = WordVectors.Load(args[1]);
                    using var doc = JsonDocument.Parse(File.ReadAllText(args[2]));
                    var single = doc.RootElement.GetProperty("single").EnumerateArray().Select(e => e.GetString()!).ToList();
                    var batch = doc.RootElement.GetProperty("batch").EnumerateArray().Select(e => e.GetString()!).ToList();
                    v.MostSimilar(single[0], TopN); // warm-up: norms, JIT
                    var times = new List<double>();
                    foreach (var w in single)
                    {
                        var t = Stopwatch.StartNew();
                        v.MostSimilar(w, TopN);
                        times.Add(t.Elapsed.TotalSeconds);
                    }
                    times.Sort();
                    v.NearestNeighbors(batch.Take(10).ToList(), TopN); // warm-up TorchSharp
                    var b = Stopwatch.StartNew();
                    var answers = v.NearestNeighbors(batch, TopN);
                    double batchSeconds = b.Elapsed.TotalSeconds;
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        single_median_seconds = times[times.Count / 2],
                        batch_seconds = batchSeconds,
                        batch_first = answers[0].Select(s => s.Word).ToList(),
                        query_peak_mb = BenchUtil.PeakRssMb(),
                    }));
                    return 0;
                }
            default:
                Console.Error.WriteLine($"unknown child mode {args[0]}");
                return 2;
        }
    }

    /// <summary>GloVe-shaped data: pseudo-words, values ~ N(0, 0.4²) printed with 5 significant digits like
    /// GloVe's; the binary twin holds exactly the float32 values the text parses to.</summary>
    private static (string Text, string Binary) EnsureData(string dir, int words, int dim)
    {
        var text = Path.Combine(dir, $"glove-{words}x{dim}.txt");
        var binary = Path.Combine(dir, $"glove-{words}x{dim}.w2v.bin");
        if (!File.Exists(text))
        {
            Console.WriteLine($"generating {text} …");
            var rng = new Random(2024);
            var temp = text + ".tmp";
            using (var w = new StreamWriter(temp, false, new UTF8Encoding(false), 1 << 20))
            {
                var sb = new StringBuilder();
                for (int i = 0; i < words; i++)
                {
                    sb.Clear();
                    int len = 2 + rng.Next(9);
                    for (int c = 0; c < len; c++) sb.Append((char)('a' + rng.Next(26)));
                    sb.Append(i.ToString(CultureInfo.InvariantCulture));
                    for (int j = 0; j < dim; j++)
                    {
                        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                        double g = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * 0.4;
                        sb.Append(' ').Append(g.ToString("G5", CultureInfo.InvariantCulture));
                    }
                    sb.Append('\n');
                    w.Write(sb);
                }
            }
            File.Move(temp, text);
        }
        if (!File.Exists(binary))
        {
            Console.WriteLine($"writing its word2vec-binary twin {binary} …");
            using var v = WordVectors.Load(text);
            v.Save(binary, VectorFileFormat.Word2VecBinary);
        }
        return (text, binary);
    }
}
