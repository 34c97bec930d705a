using System.Diagnostics;
using System.Globalization;
using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// Eval images/s of resnet18_cntk and resnet50 at batch 1 and 16, same run: our TorchSharp graph (as
/// built, and after the inference rewrites), ONNX Runtime on the file we export, and ONNX Runtime on
/// the original ResNet18.onnx; plus the import time of ResNet18.onnx.
/// </summary>
public static class OnnxBench
{
    public static int Run(string[] args)
    {
        int threads = 2, repeats = 5;
        var batches = new List<int>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch": batches.Add(int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (batches.Count == 0) batches.AddRange([1, 16]);
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"LibTorch {__version__} ({get_num_threads()} threads), ONNX Runtime {typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version} ({threads} intra-op threads)");

        var importTimes = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            var m = OnnxImporter.Import(OnnxZoo.ResNet18OnnxPath);
            importTimes.Add(sw.Elapsed.TotalSeconds);
            GC.KeepAlive(m);
        }
        importTimes.Sort();
        Console.WriteLine($"import of ResNet18.onnx (63.7 MB, 74 nodes): median {importTimes[2]:F2} s, min {importTimes[0]:F2} s over 5 runs (target < 2 s)");
        Console.WriteLine();
        Console.WriteLine("| model | batch | ours: graph (NCHW) | ours: folded + channels-last | ORT on our export | ORT on original ResNet18.onnx | ORT-export ÷ ours-fast |");
        Console.WriteLine("|---|---|---|---|---|---|---|");

        var dir = Path.Combine(Path.GetTempPath(), "transfersharp-bench-onnx-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        var ortOptions = new OnnxRuntimeOptions { Threads = threads };
        try
        {
            foreach (var name in new[] { OnnxZoo.ResNet18CntkName, "resnet50" })
            {
                using var model = name == OnnxZoo.ResNet18CntkName ? OnnxZoo.CreateResNet18Cntk() : ModelZoo.Create(name);
                model.eval();
                var file = Path.Combine(dir, name + ".onnx");
                OnnxExporter.Export(model, file, new OnnxExportOptions { IncludeFeatures = false });
                using var exported = new OnnxRuntimeEngine(file, ortOptions);
                using var original = name == OnnxZoo.ResNet18CntkName ? new OnnxRuntimeEngine(OnnxZoo.ResNet18OnnxPath, ortOptions) : null;
                bool channelsLast = true;
                using var fast = InferenceOptimizer.Optimize(model, ref channelsLast);
                foreach (var batch in batches)
                {
                    using var x = rand(batch, 3, 224, 224) * 255;
                    using var xcl = channelsLast ? InferenceOptimizer.ChannelsLast(x) : x.alias();
                    var runs = new List<Action>
                    {
                        () => model.forward(x),
                        () => fast.forward(xcl),
                        () => exported.Forward(x),
                    };
                    if (original is not null) runs.Add(() => original.Forward(x));
                    var rates = BenchUtil.Interleaved(runs, batch, repeats);
                    double plain = rates[0], folded = rates[1], ortExport = rates[2];
                    double ortOriginal = original is null ? double.NaN : rates[3];
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {name} | {batch} | {plain:F1} | {folded:F1} | {ortExport:F1} | {F(ortOriginal)} | {ortExport / folded:F2}× |"));
                }
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
        Console.WriteLine();
        Console.WriteLine("images/s, median of " + repeats + " timed rounds after 2 warm-up rounds, the engines interleaved within each round; the original ResNet18.onnx runs with its batch dimension relaxed to dynamic (it declares 1).");
        return 0;
    }

    private static string F(double v) => double.IsNaN(v) ? "–" : v.ToString("F1", CultureInfo.InvariantCulture);
}
