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
        int batch = 16, threads = 2, repeats = 5;
        var models = new List<string>();
        bool peer = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                default: models.Add(args[i]); break;
            }
        }
        if (models.Count == 0) models.AddRange(["resnet50", "mobilenet_v2"]);
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, LibTorch {__version__}, {get_num_threads()} threads, batch {batch}");

        double peak = MatmulGflops();
        Console.WriteLine($"fp32 matmul 4096³ (TorchSharp): {peak:F1} GFLOP/s");

        JsonElement? torchResults = null;
        if (peer)
        {
            var tvModels = models.Where(m => ModelZoo.Get(m).Reference == "torchvision").Select(m => new object[] { m, ModelZoo.Get(m).NativeSize }).ToArray();
            var json = JsonSerializer.Serialize(new { threads, batch, models = tvModels });
            var script = Path.Combine(AppContext.BaseDirectory, "peers", "vision_torch.py");
            var output = BenchUtil.RunPeer("/usr/bin/python3", [script, json]);
            torchResults = JsonDocument.Parse(output).RootElement;
            Console.WriteLine($"PyTorch {torchResults.Value.GetProperty("torch").GetString()}: matmul {torchResults.Value.GetProperty("matmul_gflops").GetDouble():F1} GFLOP/s, {torchResults.Value.GetProperty("threads").GetInt32()} threads");
        }

        Console.WriteLine();
        Console.WriteLine("| model | input | GFLOPs/img | ours (graph, NCHW) | ours (folded + channels-last) | TorchSharp hand-written | PyTorch NCHW | PyTorch channels_last | ours-fast ÷ PyTorch CL | % of matmul peak | graph overhead vs hand-written |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var name in models)
        {
            var entry = ModelZoo.Get(name);
            int size = entry.NativeSize;
            using var model = ModelZoo.Create(name);
            model.eval();
            double gflops = 2.0 * model.Summary().Macs / 1e9;
            using var x = randn(batch, 3, size, size);
            double plain = Throughput(model.forward, x, batch, repeats);
            double fast;
            using (var optimized = InferenceOptimizer.Optimize(model))
            using (var xcl = InferenceOptimizer.ChannelsLast(x))
                fast = Throughput(optimized.forward, xcl, batch, repeats);
            double hand = HandWritten(name) is { } tv ? Throughput(tv.forward, x, batch, repeats, tv) : double.NaN;
            double ptNchw = double.NaN, ptCl = double.NaN;
            if (torchResults is { } tr && tr.GetProperty("models").TryGetProperty(name, out var r))
            {
                ptNchw = r.GetProperty("nchw").GetDouble();
                ptCl = r.GetProperty("channels_last").GetDouble();
            }
            double peakFraction = fast * gflops / peak;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {size}² | {gflops:F2} | {plain:F1} | {fast:F1} | {F(hand)} | {F(ptNchw)} | {F(ptCl)} | {F(fast / ptCl, "F2")}× | {peakFraction * 100:F0}% | {F((hand / plain - 1) * 100, "F1")}% |"));
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

    private static double Throughput(Func<Tensor, Tensor> forward, Tensor x, int batch, int repeats, IDisposable? owner = null)
    {
        try
        {
            using var _ = no_grad();
            double s = BenchUtil.MedianSeconds(() => { using var scope = NewDisposeScope(); forward(x); }, 2, repeats);
            return batch / s;
        }
        finally
        {
            owner?.Dispose();
        }
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
