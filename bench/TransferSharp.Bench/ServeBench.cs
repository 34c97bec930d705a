using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using TransferSharp.Serving;

namespace TransferSharp.Bench;

/// <summary>
/// Load test of <c>transfer serve</c>'s server: Kestrel on 127.0.0.1 (a free port) in this process, HTTP clients in
/// this process, each scenario bounded in time. The two scenarios of issue 14's targets — sequential (one client, one
/// image after the other) and 16 concurrent clients — run in alternating rounds, so that load from other processes on the
/// shared machine falls on both alike; then 4 and 64 clients and a storm of bad requests mixed into 16 good clients run
/// once. Prints throughput, latency percentiles, errors, mean batch size and forward time (from the server's /metrics),
/// the forward cost per image at batch 1 and batched (which bounds what batching can gain), the ratio per round and
/// overall, and checks the two targets.
/// </summary>
public static class ServeBench
{
    public const string Help = "HTTP load on the server (in-process Kestrel, 127.0.0.1): sequential vs 16 clients in alternating rounds, then 4, 64 clients, bad-request storm: [--model resnet18_cntk] [--weights W] [--rounds 3] [--seconds 5] [--max-batch 16] [--max-delay-ms 5] [--workers 0 (0 chooses, as transfer serve)] [--image samples/cat.jpg] [--avx512: oneDNN unrestricted, unlike transfer serve] [--nchw: the predictor without channels-last, which transfer serve uses where oneDNN is restricted to AVX2]";

    private sealed record Scenario(string Name, int Good, int Bad);

    private sealed record Outcome(Scenario Scenario, double Seconds, List<double> Latencies, int GoodErrors, int BadAnswered, int BadWrong,
        double Batches, double Images, double BatchSeconds)
    {
        public double Rate => Latencies.Count / Seconds;
        public double MeanBatch => Batches > 0 ? Images / Batches : 0;
        public double MeanBatchMs => Batches > 0 ? BatchSeconds / Batches * 1000 : 0;
        public double ForwardMsPerImage => Images > 0 ? BatchSeconds / Images * 1000 : 0;

        public double Percentile(double q)
        {
            var sorted = Latencies.Order().ToList();
            return sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))] * 1000;
        }

        /// <summary>The outcomes of one scenario over several rounds, as one.</summary>
        public static Outcome Merge(IReadOnlyList<Outcome> rounds) => new(rounds[0].Scenario, rounds.Sum(o => o.Seconds),
            rounds.SelectMany(o => o.Latencies).ToList(), rounds.Sum(o => o.GoodErrors), rounds.Sum(o => o.BadAnswered), rounds.Sum(o => o.BadWrong),
            rounds.Sum(o => o.Batches), rounds.Sum(o => o.Images), rounds.Sum(o => o.BatchSeconds));
    }

    public static int Run(string[] args)
    {
        string model = Option(args, "--model") ?? "resnet18_cntk";
        string? weights = Option(args, "--weights");
        int rounds = int.Parse(Option(args, "--rounds") ?? "3", CultureInfo.InvariantCulture);
        double seconds = double.Parse(Option(args, "--seconds") ?? "5", CultureInfo.InvariantCulture);
        int maxBatch = int.Parse(Option(args, "--max-batch") ?? "16", CultureInfo.InvariantCulture);
        double delayMs = double.Parse(Option(args, "--max-delay-ms") ?? "5", CultureInfo.InvariantCulture);
        int workers = int.Parse(Option(args, "--workers") ?? "0", CultureInfo.InvariantCulture);
        bool nchw = args.Contains("--nchw");
        var image = File.ReadAllBytes(Option(args, "--image") ?? FindSample("cat.jpg"));
        return RunAsync(model, weights, rounds, seconds, maxBatch, delayMs, workers, nchw, image).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string modelName, string? weights, int rounds, double seconds, int maxBatch, double delayMs, int workers, bool nchw, byte[] image)
    {
        var options = new ServingOptions { MaxBatch = maxBatch, MaxDelay = TimeSpan.FromMilliseconds(delayMs), MaxQueue = 1024, Workers = workers };
        ServedModel served;
        if (nchw)
        {
            using var vision = TransferSharp.Vision.VisionModel.Load(modelName, weights);
            served = ServedModel.FromModel(vision, ServedModel.ServingPredictorOptions() with { ChannelsLast = false });
        }
        else served = ServedModel.Load(modelName, weights);
        var route = served.HasClassifier ? "v1/predict" : "v1/features";
        var name = served.Name;
        var forwardCost = ForwardCost(served, maxBatch, rounds);
        await using var app = TransferSharpServer.Build(served, options, ["http://127.0.0.1:0"]);
        var loading = Stopwatch.StartNew();
        await app.StartAsync();
        var baseUri = new Uri(TransferSharpServer.Addresses(app)[0] + "/");
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
        while (!(await client.GetAsync("readyz")).IsSuccessStatusCode) await Task.Delay(50);
        double readySeconds = loading.Elapsed.TotalSeconds;
        // Lets .NET's tiered JIT compile the request path; the server has already run every batch size once.
        await Load(client, route, image, new Scenario("warm-up", 16, 0), 2);

        var sequential = new Scenario("sequential", 1, 0);
        var sixteen = new Scenario("16 clients", 16, 0);
        var roundOutcomes = new List<(string Load, Outcome Sequential, Outcome Sixteen)>();
        for (int r = 0; r < rounds; r++)
        {
            var load = BenchUtil.LoadAverage();
            roundOutcomes.Add((load, await Load(client, route, image, sequential, seconds), await Load(client, route, image, sixteen, seconds)));
        }
        var others = new List<Outcome>();
        foreach (var s in new[] { new Scenario("4 clients", 4, 0), new Scenario("64 clients", 64, 0), new Scenario("16 clients + 16 bad-request clients", 16, 16) })
            others.Add(await Load(client, route, image, s, seconds));

        Console.WriteLine($"Model: {name}, {route}; image {image.Length / 1024} KB JPEG; --max-batch {maxBatch} --max-delay-ms {delayMs}; {options.WorkersFor(served)} worker(s); oneDNN {TransferSharp.Runtime.TorchRuntime.Avx512Mitigation}{(nchw ? ", NCHW" : ServedModel.ServingPredictorOptions().ChannelsLast ? ", channels-last" : ", NCHW")}; " +
            $"ready in {readySeconds:F1} s; {rounds} rounds of sequential then 16 clients, {seconds:0.#} s per scenario.");
        Console.WriteLine($"Machine: {BenchUtil.Machine()}.");
        Console.WriteLine();
        Console.WriteLine("| round | load average before | sequential req/s | 16 clients req/s | × sequential | p99 at 16 ms | bound ms (delay + 2 × batch) | forward ms/image at batch 1 | at mean batch (size) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for (int r = 0; r < rounds; r++)
        {
            var (load, seq, six) = roundOutcomes[r];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r + 1} | {load} | {seq.Rate:F1} | {six.Rate:F1} | {six.Rate / seq.Rate:F2}× | {six.Percentile(0.99):F0} | {Bound(six, delayMs):F0} | {seq.ForwardMsPerImage:F1} | {six.ForwardMsPerImage:F1} ({six.MeanBatch:F1}) |"));
        }
        var seqAll = Outcome.Merge(roundOutcomes.Select(o => o.Sequential).ToList());
        var sixAll = Outcome.Merge(roundOutcomes.Select(o => o.Sixteen).ToList());
        Console.WriteLine();
        Console.WriteLine("| scenario | good req/s | × sequential | p50 ms | p95 ms | p99 ms | good errors | bad answered 4xx / wrong | mean batch | mean batch ms | p99 bound ms (delay + 2 × batch) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var o in new[] { seqAll, sixAll }.Concat(others))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {o.Scenario.Name}{(o == seqAll || o == sixAll ? $" ({rounds} rounds)" : "")} | {o.Rate:F1} | {o.Rate / seqAll.Rate:F2}× | {o.Percentile(0.50):F0} | {o.Percentile(0.95):F0} | {o.Percentile(0.99):F0} | {o.GoodErrors} | {(o.Scenario.Bad > 0 ? $"{o.BadAnswered} / {o.BadWrong}" : "–")} | {o.MeanBatch:F1} | {o.MeanBatchMs:F0} | {Bound(o, delayMs):F0} |"));

        Console.WriteLine();
        Console.WriteLine("Forward pass alone (the served model, blank images, no HTTP), sizes interleaved in rounds, median:");
        Console.WriteLine();
        Console.WriteLine("| batch | ms per batch | ms per image | speed-up per image over batch 1 |");
        Console.WriteLine("|---:|---:|---:|---:|");
        foreach (var (size, ms) in forwardCost)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {size} | {ms:F1} | {ms / size:F1} | {forwardCost[0].Ms / (ms / size):F2}× |"));

        double ratio = sixAll.Rate / seqAll.Rate, p99 = sixAll.Percentile(0.99), p99Bound = Bound(sixAll, delayMs);
        double meanSequential = seqAll.Latencies.Average() * 1000;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Forward cost per image: {seqAll.ForwardMsPerImage:F1} ms at batch 1, {sixAll.ForwardMsPerImage:F1} ms at a mean batch of {sixAll.MeanBatch:F1} " +
            $"(speed-up {seqAll.ForwardMsPerImage / sixAll.ForwardMsPerImage:F2}×). A sequential request takes {meanSequential:F1} ms end to end, so with the forward " +
            $"pass alone occupying the CPU, 16 clients could reach at most {meanSequential / sixAll.ForwardMsPerImage:F2}× sequential."));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"16 clients vs sequential over all rounds: {ratio:F2}× (target ≥ 2×: {(ratio >= 2 ? "met" : "NOT met")}; per round " +
            $"{string.Join(", ", roundOutcomes.Select(o => (o.Sixteen.Rate / o.Sequential.Rate).ToString("F2", CultureInfo.InvariantCulture) + "×"))}); " +
            $"p99 at 16 clients {p99:F0} ms vs bound {p99Bound:F0} ms ({(p99 <= p99Bound ? "met" : "NOT met")}); " +
            $"good requests lost in the storm: {others[2].GoodErrors}; load average now {BenchUtil.LoadAverage()}"));
        await app.StopAsync();
        return 0;
    }

    /// <summary>
    /// Median time of one forward pass of the served model at batch sizes 1, 2, 4, … up to <paramref name="maxBatch"/>, the sizes
    /// interleaved in rounds. Run on one thread of its own, as the server's batcher runs them, before the server starts.
    /// </summary>
    private static List<(int Size, double Ms)> ForwardCost(ServedModel model, int maxBatch, int rounds)
    {
        var sizes = new List<int>();
        for (int s = 1; s < maxBatch; s *= 2) sizes.Add(s);
        sizes.Add(maxBatch);
        var times = sizes.Select(_ => new List<double>()).ToArray();
        var p = model.Preprocessing;
        var thread = new Thread(() =>
        {
            for (int round = 0; round < rounds + 1; round++)
                for (int k = 0; k < sizes.Count; k++)
                {
                    using var scope = TorchSharp.torch.NewDisposeScope();
                    var blank = TorchSharp.torch.zeros(sizes[k], p.Channels, p.CropSize, p.CropSize);
                    var started = Stopwatch.GetTimestamp();
                    _ = model.HasClassifier ? model.Forward(blank) : model.Features(blank);
                    if (round > 0) times[k].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds); // round 0 warms up
                }
        });
        thread.Start();
        thread.Join();
        return sizes.Select((s, k) => (s, times[k].Order().ElementAt(times[k].Count / 2))).ToList();
    }

    /// <summary>Issue 14's p99 bound: max-delay + 2 × the scenario's mean forward time.</summary>
    private static double Bound(Outcome o, double delayMs) => delayMs + 2 * o.MeanBatchMs;

    private static async Task<Outcome> Load(HttpClient client, string route, byte[] image, Scenario scenario, double seconds)
    {
        var before = await BatchTotals(client);
        var latencies = new List<double>();
        int goodErrors = 0, badAnswered = 0, badWrong = 0;
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var good = Enumerable.Range(0, scenario.Good).Select(_ => Task.Run(async () =>
        {
            var mine = new List<double>();
            while (clock.Elapsed < deadline)
            {
                var started = clock.Elapsed;
                using var response = await client.PostAsync(route, Body(image, "image/jpeg"));
                await response.Content.ReadAsByteArrayAsync();
                if (response.IsSuccessStatusCode) mine.Add((clock.Elapsed - started).TotalSeconds);
                else Interlocked.Increment(ref goodErrors);
            }
            lock (latencies) latencies.AddRange(mine);
        }));
        var truncated = image.AsSpan(0, image.Length / 3).ToArray();
        var bad = Enumerable.Range(0, scenario.Bad).Select(i => Task.Run(async () =>
        {
            while (clock.Elapsed < deadline)
            {
                using var response = await client.PostAsync(route, (i % 4) switch
                {
                    0 => Body(truncated, "image/jpeg"),
                    1 => Body("not an image at all"u8.ToArray(), "image/png"),
                    2 => Body("{}"u8.ToArray(), "application/json"),
                    _ => Body([], "image/jpeg"),
                });
                await response.Content.ReadAsByteArrayAsync();
                if ((int)response.StatusCode is >= 400 and < 500) Interlocked.Increment(ref badAnswered);
                else Interlocked.Increment(ref badWrong);
            }
        }));
        await Task.WhenAll(good.Concat(bad));
        double elapsed = clock.Elapsed.TotalSeconds;
        var after = await BatchTotals(client);
        return new Outcome(scenario, elapsed, latencies, goodErrors, badAnswered, badWrong,
            after.Count - before.Count, after.Images - before.Images, after.Seconds - before.Seconds);
    }

    private static HttpContent Body(byte[] bytes, string type) => new ByteArrayContent(bytes) { Headers = { ContentType = new MediaTypeHeaderValue(type) } };

    /// <summary>Forward passes, images and seconds so far, from the server's own Prometheus metrics.</summary>
    private static async Task<(double Count, double Images, double Seconds)> BatchTotals(HttpClient client)
    {
        var lines = (await client.GetStringAsync("metrics")).Split('\n');
        double Value(string name) => double.Parse(lines.Single(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);
        return (Value("transfersharp_batch_size_count"), Value("transfersharp_batch_size_sum"), Value("transfersharp_batch_duration_seconds_sum"));
    }

    private static string FindSample(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "samples", name))) return Path.Combine(dir.FullName, "samples", name);
        throw new FileNotFoundException($"samples/{name} not found above {AppContext.BaseDirectory}; pass --image FILE");
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
