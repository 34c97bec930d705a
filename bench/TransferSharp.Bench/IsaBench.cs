using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TransferSharp.Runtime;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// What <see cref="TorchRuntime.AvoidAvx512KernelFault"/> costs and what it avoids. oneDNN chooses its kernels once per
/// process, so two worker processes of this bench run side by side — one as oneDNN chooses (AVX-512 here), one after the
/// call (AVX2) — and every round times one forward in each in turn. Both also run the fault check: the same 3×3
/// convolution repeated with another thread allocating managed arrays, NaN outputs counted (the AVX-512 worker is the
/// standing proof that the fault exists, the AVX2 one that the mitigation holds). A 4096³ matmul (MKL, which the
/// setting does not touch) is the control that the two processes get the same machine.
/// </summary>
public static class IsaBench
{
    public const string Help = "oneDNN AVX-512 vs AVX2 (TorchRuntime.AvoidAvx512KernelFault) in two worker processes: eval images/s (BN folded, as Predictor runs), a matmul control and the NaN fault check: [MODEL...] (resnet50 efficientnet_b0) [--batch 16] [--threads 2] [--repeats 7] [--convs 200]";

    private const string WorkerSuite = "isa-worker";
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(0.5);

    public static int Run(string[] args)
    {
        int batch = 16, threads = 2, repeats = 7, convs = 200;
        var models = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--convs": convs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: models.Add(args[i]); break;
            }
        }
        if (models.Count == 0) models.AddRange(["resnet50", "efficientnet_b0"]);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"{threads} threads per worker, batch {batch}, {repeats} timed rounds after 2 warm-up rounds; load average at start: {BenchUtil.LoadAverage()}");
        using var avx512 = StartWorker("avx512", threads);
        using var avx2 = StartWorker("avx2", threads);
        Console.WriteLine($"workers: {avx512.Hello}, {avx2.Hello}");
        // First, in fresh processes: after the models below had run, the AVX-512 worker once showed no NaN in 100 (why is open).
        foreach (var (label, worker) in new[] { ("AVX-512", avx512), ("AVX2", avx2) })
        {
            var fault = worker.Send(new { op = "fault", convs });
            Console.WriteLine($"fault check, {label} worker: {fault.GetProperty("nan").GetInt32()} of {convs} convolutions with NaN ({fault.GetProperty("gcs").GetInt32()} gen-0 GCs during them)");
        }

        const int n = 4096;
        var mm = BenchUtil.InterleavedSeconds([Call(avx512, new { op = "matmul", n }), Call(avx2, new { op = "matmul", n })], repeats: 3, warmup: 1, settle: Settle);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"control, fp32 matmul {n}³ (MKL), median of 3 interleaved rounds: AVX-512 worker {2.0 * n * n * n / mm[0] / 1e9:F1} GFLOP/s, AVX2 worker {2.0 * n * n * n / mm[1] / 1e9:F1} GFLOP/s"));

        Console.WriteLine();
        Console.WriteLine("| model | input | AVX-512 (images/s) | AVX2 (images/s) | AVX2 ÷ AVX-512 | load average before → after |");
        Console.WriteLine("|---|---|---:|---:|---:|---|");
        foreach (var name in models)
        {
            string before = BenchUtil.LoadAverage();
            var load = new { op = "load", name, batch };
            avx512.Send(load);
            avx2.Send(load);
            var s = BenchUtil.InterleavedSeconds([Call(avx512, new { op = "run" }), Call(avx2, new { op = "run" })], repeats, settle: Settle);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {ModelZoo.Get(name).NativeSize}² | {batch / s[0]:F2} | {batch / s[1]:F2} | {s[0] / s[1]:F2}× | {before} → {BenchUtil.LoadAverage()} |"));
        }

        Console.WriteLine($"load average at end: {BenchUtil.LoadAverage()}");
        return 0;
    }

    private static Func<double> Call(LinePeer worker, object command) => () => worker.Send(command).GetProperty("seconds").GetDouble();

    private static LinePeer StartWorker(string isa, int threads)
    {
        // This very program again, as an apphost or through `dotnet TransferSharp.Bench.dll`.
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var arguments = new List<string>();
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") arguments.Add(typeof(IsaBench).Assembly.Location);
        arguments.AddRange([WorkerSuite, isa, threads.ToString(CultureInfo.InvariantCulture)]);
        return new LinePeer(self, arguments);
    }

    /// <summary>True when this process was started as a worker; then it must run <see cref="Worker"/> before anything loads LibTorch.</summary>
    public static bool IsWorker(string[] args) => args.Length > 0 && args[0] == WorkerSuite;

    /// <summary>A worker: picks its kernels (the mitigation or not) first, then answers one JSON command a line.</summary>
    public static int Worker(string[] args)
    {
        var mitigation = args[1] == "avx2" ? TorchRuntime.AvoidAvx512KernelFault() : TorchRuntime.Avx512Mitigation;
        if (args[1] == "avx2" && mitigation != Avx512KernelFaultMitigation.Applied)
            throw new InvalidOperationException($"the AVX2 worker could not restrict oneDNN: {mitigation}");
        if (args[1] == "avx512" && Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is { } isa)
            throw new InvalidOperationException($"the AVX-512 worker runs with ONEDNN_MAX_CPU_ISA={isa} in its environment: unset it");
        TorchRuntime.TuneAllocator();
        TorchRuntime.DisableNnpack();
        set_num_threads(int.Parse(args[2], CultureInfo.InvariantCulture));
        Console.WriteLine(JsonSerializer.Serialize(new { worker = args[1], mitigation = mitigation.ToString(), threads = get_num_threads() }));

        Vision.Graph.GraphModule? model = null;
        Tensor? input = null;
        string? line;
        while ((line = Console.ReadLine()) is not null)
        {
            var command = JsonDocument.Parse(line).RootElement;
            object answer;
            switch (command.GetProperty("op").GetString())
            {
                case "load":
                    model?.Dispose();
                    input?.Dispose();
                    using (var built = ModelZoo.Create(command.GetProperty("name").GetString()!))
                    {
                        built.eval();
                        model = InferenceOptimizer.FoldBatchNorm(built); // as Predictor runs it
                    }
                    int size = ModelZoo.Get(command.GetProperty("name").GetString()!).NativeSize;
                    input = rand([command.GetProperty("batch").GetInt32(), 3, size, size], generator: new Generator(7)) * 2 - 1;
                    answer = new { };
                    break;
                case "run":
                    answer = new { seconds = BenchUtil.Timed(() => model!.forward(input!))() };
                    break;
                case "matmul":
                    int n = command.GetProperty("n").GetInt32();
                    using (var a = randn(n, n))
                    using (var b = randn(n, n))
                        answer = new { seconds = BenchUtil.Timed(() => a.mm(b))() };
                    break;
                case "fault":
                    answer = FaultCheck(command.GetProperty("convs").GetInt32());
                    break;
                default:
                    throw new InvalidOperationException($"unknown command {line}");
            }
            Console.WriteLine(JsonSerializer.Serialize(answer));
        }
        return 0;
    }

    /// <summary>The reproduction of docs/reliability.md: one 3×3 convolution on fresh clones of the same tensors, while
    /// another thread allocates small managed arrays so that the GC suspends the computing thread often.</summary>
    private static object FaultCheck(int convs)
    {
        var generator = new Generator(1);
        using var x = rand([1, 24, 128, 128], generator: generator) * 2 - 1;
        using var w = randn([96, 24, 3, 3], generator: generator) * 0.1;
        using var _ = no_grad();
        var stop = false;
        var churn = new Thread(() =>
        {
            var keep = new List<byte[]>();
            while (!Volatile.Read(ref stop)) { keep.Add(new byte[4096]); if (keep.Count > 20000) keep.Clear(); }
        });
        int gcs = GC.CollectionCount(0), nan = 0;
        churn.Start();
        for (int i = 0; i < convs; i++)
        {
            using var scope = NewDisposeScope();
            if (!nn.functional.conv2d(x.clone(), w.clone(), padding: [1, 1]).isfinite().all().item<bool>()) nan++;
        }
        Volatile.Write(ref stop, true);
        churn.Join();
        return new { nan, gcs = GC.CollectionCount(0) - gcs };
    }
}
