using System.Globalization;
using System.Text.Json;
using TorchSharp;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// Eval throughput (images/s) of zoo models through our graph interpreter — as built, and after
/// the inference rewrites (BN folding + channels-last) — beside TorchSharp's hand-written
/// torchvision modules and PyTorch (NCHW and channels_last), with the fp32 matmul peak of the same run.
/// </summary>
public static class VisionBench
{
    public static int Run(string[] args)
    {
        int batch = 16, threads = 2, repeats = 7;
        var models = new List<string>();
        bool peer = true;
        string? timm = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                case "--timm": timm = args[++i]; break;
                default: models.Add(args[i]); break;
            }
        }
        if (models.Count == 0) models.AddRange(["resnet50", "mobilenet_v2"]);
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, LibTorch {__version__}, {get_num_threads()} threads, batch {batch}");

        double peak = MatmulGflops();
        Console.WriteLine($"fp32 matmul 4096³ (TorchSharp): {peak:F1} GFLOP/s");

        JsonElement? torchResults = null, torchTuned = null;
        if (peer)
        {
            // torchvision models always; timm's (ViT, the TF EfficientNets, ConvNeXt) when --timm names a checkout of it.
            var peerModels = models.Where(m => ModelZoo.Get(m).Reference == "torchvision" || (timm is not null && ModelZoo.Get(m).Reference == "timm"))
                .Select(m => new object[] { m, ModelZoo.Get(m).NativeSize, ModelZoo.Get(m).Reference, ModelZoo.Get(m).ReferenceModel }).ToArray();
            var json = JsonSerializer.Serialize(new { threads, batch, models = peerModels });
            var script = Path.Combine(AppContext.BaseDirectory, "peers", "vision_torch.py");
            var plainEnv = new Dictionary<string, string>();
            if (timm is not null) plainEnv["PYTHONPATH"] = timm;
            var output = BenchUtil.RunPeer("/usr/bin/python3", [script, json], plainEnv);
            torchResults = JsonDocument.Parse(output).RootElement;
            // The same glibc malloc tuning our process applies (TorchRuntime.TuneAllocator), so the
            // peer is not penalised by page-fault churn on large activations.
            var tuned = new Dictionary<string, string>(plainEnv) { ["MALLOC_MMAP_THRESHOLD_"] = "1073741824", ["MALLOC_TRIM_THRESHOLD_"] = "2147483647" };
            torchTuned = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, json], tuned)).RootElement;
            Console.WriteLine($"PyTorch {torchResults.Value.GetProperty("torch").GetString()}: matmul {torchResults.Value.GetProperty("matmul_gflops").GetDouble():F1} GFLOP/s, {torchResults.Value.GetProperty("threads").GetInt32()} threads");
            // The peak is the best of the two measurements: on a shared machine one of them can be
            // low, and a low peak would flatter our fraction of it.
            peak = Math.Max(peak, torchResults.Value.GetProperty("matmul_gflops").GetDouble());
            Console.WriteLine($"matmul peak used below: {peak:F1} GFLOP/s");
        }

        Console.WriteLine();
        Console.WriteLine("| model | input | GFLOPs/img | ours (graph, NCHW) | ours (folded + channels-last) | TorchSharp hand-written | PyTorch NCHW | PyTorch channels_last | PyTorch CL, tuned malloc | ours-fast ÷ best PyTorch CL | % of matmul peak | graph overhead vs hand-written |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var name in models)
        {
            var entry = ModelZoo.Get(name);
            int size = entry.NativeSize;
            using var model = ModelZoo.Create(name);
            model.eval();
            double gflops = 2.0 * model.Summary().Macs / 1e9;
            using var x = randn(batch, 3, size, size);
            bool channelsLast = true;
            using var optimized = InferenceOptimizer.Optimize(model, ref channelsLast);
            using var xcl = channelsLast ? InferenceOptimizer.ChannelsLast(x) : x.alias();
            using var hand = HandWritten(name);
            // Interleaved rounds: load from other processes falls on all variants alike.
            var runs = new List<Action> { () => model.forward(x), () => optimized.forward(xcl) };
            if (hand is not null) runs.Add(() => hand.forward(x));
            var rates = BenchUtil.Interleaved(runs, batch, repeats);
            double plain = rates[0], fast = rates[1], handRate = hand is null ? double.NaN : rates[2];
            double ptNchw = double.NaN, ptCl = double.NaN, ptClTuned = double.NaN;
            if (torchResults is { } tr && tr.GetProperty("models").TryGetProperty(name, out var r))
            {
                ptNchw = r.GetProperty("nchw").GetDouble();
                ptCl = r.GetProperty("channels_last").GetDouble();
            }
            if (torchTuned is { } tt && tt.GetProperty("models").TryGetProperty(name, out var rt))
                ptClTuned = rt.GetProperty("channels_last").GetDouble();
            double bestPt = double.IsNaN(ptClTuned) ? ptCl : Math.Max(ptCl, ptClTuned);
            double peakFraction = fast * gflops / peak;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {size}² | {gflops:F2} | {plain:F1} | {fast:F1} | {F(handRate)} | {F(ptNchw)} | {F(ptCl)} | {F(ptClTuned)} | {F(fast / bestPt, "F2")}× | {peakFraction * 100:F0}% | {F((handRate / plain - 1) * 100, "F1")}% |"));
        }
        return 0;
    }

    private static string F(double v, string format = "F1") => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);

    private static double MatmulGflops()
    {
        using var _ = no_grad();
        using var a = randn(4096, 4096);
        using var b = randn(4096, 4096);
        double s = BenchUtil.MedianSeconds(() => { using var c = a.mm(b); }, 1, 3);
        return 2.0 * 4096 * 4096 * 4096 / s / 1e9;
    }

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
