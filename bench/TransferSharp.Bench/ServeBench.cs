using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using TransferSharp.Serving;

namespace TransferSharp.Bench;

/// <summary>
/// Load test of <c>transfer serve</c>'s server: Kestrel on 127.0.0.1 (a free port) in this process, HTTP clients in
/// this process, each scenario bounded in time. Sequential (one client, one image after the other), 4, 16 and 64
/// concurrent clients, and a storm of bad requests mixed into 16 good clients. Prints throughput, latency percentiles,
/// errors, mean batch size and time (from the server's /metrics), and checks the two targets of issue 14.
/// </summary>
public static class ServeBench
{
    public const string Help = "HTTP load on the server (in-process Kestrel, 127.0.0.1): sequential, 4, 16, 64 clients, bad-request storm: [--model resnet18_cntk] [--weights W] [--seconds 8] [--max-batch 16] [--max-delay-ms 5] [--image samples/cat.jpg]";

    private sealed record Scenario(string Name, int Good, int Bad);

    private sealed record Outcome(Scenario Scenario, double Seconds, List<double> Latencies, int GoodErrors, int BadAnswered, int BadWrong,
        double MeanBatch, double MeanBatchSeconds);

    public static int Run(string[] args)
    {
        string model = Option(args, "--model") ?? "resnet18_cntk";
        string? weights = Option(args, "--weights");
        double seconds = double.Parse(Option(args, "--seconds") ?? "8", CultureInfo.InvariantCulture);
        int maxBatch = int.Parse(Option(args, "--max-batch") ?? "16", CultureInfo.InvariantCulture);
        double delayMs = double.Parse(Option(args, "--max-delay-ms") ?? "5", CultureInfo.InvariantCulture);
        var image = File.ReadAllBytes(Option(args, "--image") ?? FindSample("cat.jpg"));
        return RunAsync(model, weights, seconds, maxBatch, delayMs, image).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string modelName, string? weights, double seconds, int maxBatch, double delayMs, byte[] image)
    {
        var options = new ServingOptions { MaxBatch = maxBatch, MaxDelay = TimeSpan.FromMilliseconds(delayMs), MaxQueue = 1024 };
        var served = ServedModel.Load(modelName, weights);
        var route = served.HasClassifier ? "v1/predict" : "v1/features";
        var name = served.Name;
        await using var app = TransferSharpServer.Build(served, options, ["http://127.0.0.1:0"]);
        await app.StartAsync();
        var baseUri = new Uri(TransferSharpServer.Addresses(app)[0] + "/");
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
        while (!(await client.GetAsync("readyz")).IsSuccessStatusCode) await Task.Delay(50);
        await Load(client, route, image, new Scenario("warm-up", 16, 0), 2); // first batches of each size are slow (oneDNN primitives)

        var scenarios = new[] { new Scenario("sequential", 1, 0), new Scenario("4 clients", 4, 0), new Scenario("16 clients", 16, 0),
            new Scenario("64 clients", 64, 0), new Scenario("16 clients + 16 bad-request clients", 16, 16) };
        var outcomes = new List<Outcome>();
        foreach (var s in scenarios) outcomes.Add(await Load(client, route, image, s, seconds));

        Console.WriteLine($"Model: {name}, {route}; image {image.Length / 1024} KB JPEG; --max-batch {maxBatch} --max-delay-ms {delayMs}; {seconds:0.#} s per scenario.");
        Console.WriteLine($"Machine: {BenchUtil.Machine()}; load average before/after: see below.");
        Console.WriteLine();
        Console.WriteLine("| scenario | good req/s | × sequential | p50 ms | p95 ms | p99 ms | good errors | bad answered 4xx / wrong | mean batch | mean batch ms | p99 bound ms (delay + 2 × batch) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        double sequential = outcomes[0].Latencies.Count / outcomes[0].Seconds;
        foreach (var o in outcomes)
        {
            o.Latencies.Sort();
            double rate = o.Latencies.Count / o.Seconds, bound = delayMs + 2 * o.MeanBatchSeconds * 1000;
            string P(double q) => o.Latencies.Count == 0 ? "–" : (o.Latencies[Math.Min(o.Latencies.Count - 1, (int)(q * o.Latencies.Count))] * 1000).ToString("F0", CultureInfo.InvariantCulture);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {o.Scenario.Name} | {rate:F1} | {rate / sequential:F2}× | {P(0.50)} | {P(0.95)} | {P(0.99)} | {o.GoodErrors} | {(o.Scenario.Bad > 0 ? $"{o.BadAnswered} / {o.BadWrong}" : "–")} | {o.MeanBatch:F1} | {o.MeanBatchSeconds * 1000:F0} | {bound:F0} |"));
        }
        var sixteen = outcomes[2];
        double ratio = sixteen.Latencies.Count / sixteen.Seconds / sequential;
        double p99 = sixteen.Latencies[(int)(0.99 * sixteen.Latencies.Count)] * 1000, p99Bound = delayMs + 2 * sixteen.MeanBatchSeconds * 1000;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"16 clients vs sequential: {ratio:F2}× (target ≥ 2×: {(ratio >= 2 ? "met" : "NOT met")}); " +
            $"p99 at 16 clients {p99:F0} ms vs bound {p99Bound:F0} ms ({(p99 <= p99Bound ? "met" : "NOT met")}); " +
            $"good requests lost in the storm: {outcomes[4].GoodErrors}; load average now {File.ReadAllText("/proc/loadavg").Trim()}"));
        await app.StopAsync();
        return 0;
    }

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
        double batches = after.Count - before.Count;
        return new Outcome(scenario, elapsed, latencies, goodErrors, badAnswered, badWrong,
            batches > 0 ? (after.Images - before.Images) / batches : 0, batches > 0 ? (after.Seconds - before.Seconds) / batches : 0);
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
