using System.Globalization;
using System.Text.Json;
using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// Eval throughput (images/s) of zoo models through our graph interpreter — as built, as <c>Predictor</c> runs it
/// (BatchNorm folded, NCHW) and with channels-last weights — beside TorchSharp's hand-written torchvision modules
/// and PyTorch (NCHW and channels_last, with and without our malloc tuning), with the fp32 matmul peak of the same
/// run. PyTorch runs in peer processes driven call by call, so every round times ours and the peer's in turn.
/// </summary>
public static class VisionBench
{
    public static int Run(string[] args)
    {
        int batch = 16, threads = 2, repeats = 7;
        var models = new List<string>();
        bool peer = true, channelsLastVariants = true;
        string? timm = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                case "--nchw-only": channelsLastVariants = false; break;
                case "--timm": timm = args[++i]; break;
                default: models.Add(args[i]); break;
            }
        }
        if (models.Count == 0) models.AddRange(["resnet50", "mobilenet_v2"]);
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, LibTorch {__version__}, {get_num_threads()} threads, batch {batch}, {repeats} timed rounds after 2 warm-up rounds");
        Console.WriteLine($"load average at start: {BenchUtil.LoadAverage()}");

        // Two peers: PyTorch as it comes, and with the glibc malloc tuning our process applies
        // (TorchRuntime.TuneAllocator), so that the peer is not penalised by page-fault churn on large activations.
        LinePeer? plain = null, tuned = null;
        try
        {
            if (peer)
            {
                BenchUtil.EnsureDebianPackages(BenchUtil.TorchPeerPackages);
                var script = Path.Combine(AppContext.BaseDirectory, "peers", "vision_torch.py");
                var env = new Dictionary<string, string>();
                if (timm is not null) env["PYTHONPATH"] = timm;
                var json = JsonSerializer.Serialize(new { threads });
                plain = new LinePeer("/usr/bin/python3", [script, json], env);
                tuned = new LinePeer("/usr/bin/python3", [script, json],
                    new Dictionary<string, string>(env) { ["MALLOC_MMAP_THRESHOLD_"] = "1073741824", ["MALLOC_TRIM_THRESHOLD_"] = "2147483647" });
                var blas = plain.Hello.GetProperty("blas").EnumerateArray().Select(e => e.GetString()!).ToArray();
                Console.WriteLine($"PyTorch {plain.Hello.GetProperty("torch").GetString()}, {plain.Hello.GetProperty("threads").GetInt32()} threads, BLAS: {string.Join(", ", blas)}");
                // Debian's torch calls libblas.so.3; without libopenblas0-* that is the reference BLAS, which made
                // ViT-B's linear layers take ~300 s a batch: no fair peer. Say so instead of timing it.
                if (!blas.Any(b => b.Contains("openblas", StringComparison.Ordinal)))
                    throw new InvalidOperationException($"the PyTorch peer runs the reference BLAS ({string.Join(", ", blas)}), ~50x slower than OpenBLAS at matrix products: install it (apt-get install libopenblas0-pthread) or pass --no-peer");
            }

            // The fp32 matmul peak, ours and PyTorch's in interleaved rounds; the larger is the peak used below:
            // on a shared machine one of them can be low, and a low peak would flatter our fraction of it.
            const int n = 4096;
            using var a = randn(n, n);
            using var b = randn(n, n);
            var mm = new List<Func<double>> { BenchUtil.Timed(() => a.mm(b)) };
            if (plain is not null) mm.Add(() => plain.Send(new { op = "matmul", n }).GetProperty("seconds").GetDouble());
            var mmSeconds = BenchUtil.InterleavedSeconds(mm, repeats: 3, warmup: 1, settle: Settle);
            var mmGflops = mmSeconds.Select(sec => 2.0 * n * n * n / sec / 1e9).ToArray();
            double peak = mmGflops.Max();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fp32 matmul {n}³, median of 3 interleaved rounds: TorchSharp {mmGflops[0]:F1} GFLOP/s{(plain is null ? "" : $", PyTorch {mmGflops[1]:F1}")}; peak used below {peak:F1}"));

            Console.WriteLine();
            Console.WriteLine("| model | input | GFLOPs/img | ours: graph as built | ours: Predictor (BN folded, NCHW) | ours: folded + channels-last | TorchSharp hand-written | PyTorch NCHW | PyTorch channels_last | PyTorch NCHW, tuned malloc | PyTorch CL, tuned malloc | Predictor ÷ best PyTorch | best ours ÷ best PyTorch | % of matmul peak (best ours) | graph overhead vs hand-written | load average before → after |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var name in models)
                Console.WriteLine(Measure(name, batch, repeats, channelsLastVariants, peak, ModelZoo.Get(name).Reference is "torchvision" || (ModelZoo.Get(name).Reference is "timm" && timm is not null) ? [plain, tuned] : []));
            Console.WriteLine($"load average at end: {BenchUtil.LoadAverage()}");
        }
        finally
        {
            plain?.Dispose();
            tuned?.Dispose();
        }
        return 0;
    }

    /// <summary>One row of the table: every variant of one model timed in interleaved rounds.</summary>
    private static string Measure(string name, int batch, int repeats, bool channelsLastVariants, double peak, LinePeer?[] peers)
    {
        string loadBefore = BenchUtil.LoadAverage();
        var entry = ModelZoo.Get(name);
        int size = entry.NativeSize;
        using var model = ModelZoo.Create(name);
        model.eval();
        double gflops = 2.0 * model.Summary().Macs / 1e9;
        using var x = InputPattern(batch, size);
        using var folded = InferenceOptimizer.FoldBatchNorm(model);
        bool foldedSomething = folded.Graph.Nodes.Count != model.Graph.Nodes.Count;
        // Channels-last pays for stacks of convolutions; a transformer has one, its patch embedding: no such variants there.
        channelsLastVariants &= model.Graph.Nodes.Count(node => node.Op is Conv2dOp) > 1;
        using var cl = channelsLastVariants ? InferenceOptimizer.FoldBatchNorm(model) : null;
        bool clExact = cl is not null && InferenceOptimizer.TryChannelsLast(cl);
        using var xcl = InferenceOptimizer.ChannelsLast(x);
        using var hand = HandWritten(name);

        // Each variant is a column; NaN where it does not apply (nothing to fold, no peer, channels-last not exact here).
        var columns = new (string Label, Func<double>? Run)[]
        {
            ("graph", foldedSomething ? BenchUtil.Timed(() => model.forward(x)) : null),
            ("predictor", BenchUtil.Timed(() => folded.forward(x))),
            ("channels-last", clExact ? BenchUtil.Timed(() => cl!.forward(xcl)) : null),
            ("hand", hand is null ? null : BenchUtil.Timed(() => hand.forward(x))),
            ("pt nchw", PeerRun(peers, 0, "nchw")),
            ("pt cl", channelsLastVariants ? PeerRun(peers, 0, "channels_last") : null),
            ("pt tuned nchw", PeerRun(peers, 1, "nchw")),
            ("pt tuned cl", channelsLastVariants ? PeerRun(peers, 1, "channels_last") : null),
        };
        foreach (var p in peers)
            p?.Send(new { op = "load", name, size, source = entry.Reference, reference_model = entry.ReferenceModel, batch, channels_last = channelsLastVariants });
        var active = columns.Where(c => c.Run is not null).ToArray();
        var seconds = BenchUtil.InterleavedSeconds(active.Select(c => c.Run!).ToArray(), repeats, settle: Settle);
        var rate = new Dictionary<string, double>();
        for (int k = 0; k < active.Length; k++) rate[active[k].Label] = batch / seconds[k];
        double R(string label) => rate.GetValueOrDefault(label, double.NaN);

        double bestPt = Max(R("pt nchw"), R("pt cl"), R("pt tuned nchw"), R("pt tuned cl"));
        double bestOurs = Max(R("predictor"), R("channels-last"));
        double graph = foldedSomething ? R("graph") : R("predictor");
        return string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {size}² | {gflops:F2} | {(foldedSomething ? F(graph) : "= Predictor")} | {F(R("predictor"))} | {F(R("channels-last"))} | {F(R("hand"))} | {F(R("pt nchw"))} | {F(R("pt cl"))} | {F(R("pt tuned nchw"))} | {F(R("pt tuned cl"))} | {F(R("predictor") / bestPt, "F2")}× | {F(bestOurs / bestPt, "F2")}× | {bestOurs * gflops / peak * 100:F0}% | {F((R("hand") / graph - 1) * 100, "F1")}% | {loadBefore} → {BenchUtil.LoadAverage()} |");
    }

    // Between engines, so that the threads of the one that ran last have stopped spinning (see InterleavedSeconds).
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(0.5);

    private static Func<double>? PeerRun(LinePeer?[] peers, int index, string layout) =>
        index < peers.Length && peers[index] is { } p ? () => p.Send(new { op = "run", layout }).GetProperty("seconds").GetDouble() : null;

    private static double Max(params double[] values) => values.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Max();

    /// <summary>The input both sides run: deterministic values in [-1, 1) from integer arithmetic, which
    /// bench/peers/vision_torch.py (input_pattern) reproduces exactly.</summary>
    private static Tensor InputPattern(int batch, int size)
    {
        using var i = arange(batch * 3L * size * size, dtype: ScalarType.Int64);
        using var pattern = i.mul(7919).remainder(1000);
        using var f = pattern.to(ScalarType.Float32);
        return f.div(500).sub(1).reshape(batch, 3, size, size);
    }

    // Three significant figures at least: ViT-B runs about one image a second here.
    private static string F(double v, string? format = null) =>
        double.IsNaN(v) ? "–" : v.ToString(format ?? (Math.Abs(v) < 10 ? "F2" : "F1"), CultureInfo.InvariantCulture);

    private static nn.Module<Tensor, Tensor>? HandWritten(string name)
    {
        nn.Module<Tensor, Tensor>? m = name switch
        {
            "resnet50" => torchvision.models.resnet50(),
            "resnet18" => torchvision.models.resnet18(),
            "resnet101" => torchvision.models.resnet101(),
            "mobilenet_v2" => torchvision.models.mobilenet_v2(),
            "vgg16" => torchvision.models.vgg16(),
            "inception_v3" => torchvision.models.inception_v3(),
            _ => null,
        };
        m?.eval();
        return m;
    }
}
