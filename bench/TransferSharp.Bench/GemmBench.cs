using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// The fp32 matrix-product peak of the two engines on this CPU: LibTorch's <c>mm</c> (its MKL) against ONNX Runtime's
/// MatMul (its MLAS kernels) on an n×n by n×n product, the ONNX file being a one-Linear graph written by our exporter,
/// 2 threads each, interleaved rounds with a pause between engines. Linear layers dominate ViT and BERT, so this bounds
/// how close TransferSharp can come to ONNX Runtime on them.
/// </summary>
public static class GemmBench
{
    public const string Help = "fp32 matmul peak: LibTorch's mm (MKL) vs ONNX Runtime's MatMul (MLAS), interleaved: [--n 2048] [--threads 2] [--rounds 5]";

    public static int Run(string[] args)
    {
        int n = 2048, threads = 2, rounds = 5;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--n": n = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        Console.WriteLine($"MKL code path: {TransferSharp.Runtime.TorchRuntime.MklCodePath} (TRANSFERSHARP_MKL_INTEL_PATH=0 for MKL's own vendor choice)");
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"load average at start: {BenchUtil.LoadAverage()}");
        var b = new GraphBuilder("matmul", new long[] { n, n });
        using var module = new GraphModule(b.Build(b.Linear(b.Input, "fc", n, bias: false)));
        module.eval();
        var dir = Directory.CreateTempSubdirectory("transfersharp-gemm");
        try
        {
            var path = Path.Combine(dir.FullName, "matmul.onnx");
            OnnxExporter.Export(module, path);
            using var session = new InferenceSession(path, new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 });
            var input = NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(),
                new DenseTensor<float>(Enumerable.Range(0, n * n).Select(i => (i % 7) * 0.1f).ToArray(), [n, n]));
            using var x = randn(n, n);
            using var w = randn(n, n);
            var seconds = BenchUtil.InterleavedSeconds(
            [
                BenchUtil.Timed(() => { using var _ = no_grad(); using var z = x.mm(w); }),
                BenchUtil.Timed(() => { using var r = session.Run([input]); }),
            ], rounds, warmup: 2, settle: TimeSpan.FromMilliseconds(500));
            double flop = 2.0 * n * n * n;
            Console.WriteLine($"| engine | GFLOP/s ({n}³, {threads} threads, median of {rounds}) |");
            Console.WriteLine("|---|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| LibTorch mm (MKL) | {flop / seconds[0] / 1e9:F1} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| ONNX Runtime MatMul (MLAS) | {flop / seconds[1] / 1e9:F1} |"));
            Console.WriteLine($"load average at end: {BenchUtil.LoadAverage()}");
        }
        finally
        {
            dir.Delete(true);
        }
        return 0;
    }
}
