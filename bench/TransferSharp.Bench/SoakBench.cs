using System.Diagnostics;
using System.Globalization;
using TransferSharp.Vision;
using TransferSharp.Vision.Inference;

namespace TransferSharp.Bench;

/// <summary>
/// Memory soak: many images through one <see cref="Predictor"/> from several threads, resident memory sampled over
/// time. Passes when the median RSS of the last 20 % of the images is at most 10 % above the median just after
/// warm-up (20–40 % of the images).
/// </summary>
public static class SoakBench
{
    public const string Help = "RSS over time while N images go through one Predictor from T threads: [--images 10000] [--threads 4] [--model resnet18] [--batch 8] [--interval 5]";

    public static int Run(string[] args)
    {
        int images = Option(args, "--images", 10_000), threads = Option(args, "--threads", 4), batch = Option(args, "--batch", 8);
        int interval = Option(args, "--interval", 5);
        string modelName = args.SkipWhile(a => a != "--model").Skip(1).FirstOrDefault() ?? "resnet18";
        var photos = Directory.GetFiles(Path.Combine(FindRepoRoot(), "tests", "data", "photos"), "*.jpg").Order(StringComparer.Ordinal).ToArray();

        Console.WriteLine($"# soak: {images} images ({photos.Length} photos cycled) through one {modelName} Predictor, {threads} threads, batches of {batch}");
        Console.WriteLine($"# {BenchUtil.Machine()}");
        using var model = VisionModel.Load(modelName, "none");
        using var predictor = new Predictor(model.Module, model.Preprocessing, model.Labels, new PredictorOptions { BatchSize = batch });
        double afterLoad = RssMb();

        var samples = new List<(double Seconds, long Done, double Rss, double Managed)>();
        long done = 0;
        var clock = Stopwatch.StartNew();
        using var sampler = new Timer(_ =>
        {
            lock (samples) samples.Add((clock.Elapsed.TotalSeconds, Interlocked.Read(ref done), RssMb(), GC.GetTotalMemory(false) / 1048576.0));
        }, null, TimeSpan.Zero, TimeSpan.FromSeconds(interval));
        long next = 0;
        var workers = Enumerable.Range(0, threads).Select(_ => Task.Run(() =>
        {
            while (true)
            {
                long start = Interlocked.Add(ref next, batch) - batch;
                if (start >= images) return;
                int n = (int)Math.Min(batch, images - start);
                var paths = Enumerable.Range(0, n).Select(i => photos[(start + i) % photos.Length]).ToArray();
                predictor.Predict(paths, top: 1);
                Interlocked.Add(ref done, n);
            }
        })).ToArray();
        Task.WaitAll(workers);
        sampler.Dispose();
        lock (samples) samples.Add((clock.Elapsed.TotalSeconds, done, RssMb(), GC.GetTotalMemory(false) / 1048576.0));

        Console.WriteLine();
        Console.WriteLine("| seconds | images | RSS MB | managed heap MB |");
        Console.WriteLine("|--:|--:|--:|--:|");
        foreach (var s in samples) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {s.Seconds:F0} | {s.Done} | {s.Rss:F0} | {s.Managed:F0} |"));
        // RSS swings by ±10 % from sample to sample (malloc arenas of the decoding threads, LibTorch's caching): the
        // trend is the median of the samples just after warm-up (20–40 % of the images) against the last 20 %.
        double Median(IEnumerable<double> values) { var v = values.Order().ToArray(); return v.Length == 0 ? double.NaN : (v[(v.Length - 1) / 2] + v[v.Length / 2]) / 2; }
        double early = Median(samples.Where(s => s.Done >= images * 0.2 && s.Done <= images * 0.4).Select(s => s.Rss));
        double late = Median(samples.Where(s => s.Done >= images * 0.8).Select(s => s.Rss));
        double growth = (late - early) / early * 100;
        var afterWarmup = samples.Where(s => s.Done >= images * 0.2).Select(s => s.Rss).ToArray();
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RSS after load {afterLoad:F0} MB; after warm-up {afterWarmup.Min():F0}–{afterWarmup.Max():F0} MB; peak (VmHWM) {BenchUtil.PeakRssMb():F0} MB; "
            + $"median {early:F0} MB at 20–40 % of the images, {late:F0} MB in the last 20 %: growth {growth:F1} % (bound 10 %); "
            + $"{done / clock.Elapsed.TotalSeconds:F1} images/s"));
        return growth <= 10 ? 0 : 1;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static double RssMb()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TransferSharp.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
