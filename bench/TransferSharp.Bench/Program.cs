using TransferSharp.Bench;

// Benchmarks measure ours against the peer in the same run and print a Markdown table for
// docs/benchmarks.md. Speed targets live here, never in unit tests.
//   dotnet run -c Release --project bench/TransferSharp.Bench -- <suite> [options]
var suites = new Dictionary<string, (string Help, Func<string[], int> Run)>(StringComparer.OrdinalIgnoreCase)
{
    ["vectors"] = (VectorsBench.Help, VectorsBench.Run),
    ["vision"] = ("eval images/s of zoo models vs TorchSharp hand-written and PyTorch: [MODEL...] [--batch 16] [--threads 2] [--repeats 7] [--no-peer] [--nchw-only: no channels-last variants (models with one convolution, e.g. ViT, never have them)] [--timm DIR: a timm checkout, for the timm models' peer]", VisionBench.Run),
    ["training"] = ("fine-tuning step vs PyTorch, extraction end to end vs model only: [--model resnet50] [--batch 16] [--threads 2] [--images 96] [--steps 6] [--no-peer]", TrainingBench.Run),
    ["mlnet"] = (MlNetBench.Help, MlNetBench.Run),
    ["heads"] = (HeadsBench.Help, HeadsBench.Run),
    ["soak"] = (SoakBench.Help, SoakBench.Run),
    ["serve"] = (ServeBench.Help, ServeBench.Run),
    ["dropout"] = (DropoutBench.Help, DropoutBench.Run),
    ["tokenizer"] = (TokenizerBench.Help, TokenizerBench.Run),
    ["text-encode"] = (TextEncodeBench.Help, TextEncodeBench.Run),
    ["onnx-conformance"] = (OnnxConformance.Help, OnnxConformance.Run),
    ["isa"] = (IsaBench.Help, IsaBench.Run),
    ["gemm"] = (GemmBench.Help, GemmBench.Run),
    ["onnx"] = ("resnet18_cntk and resnet50: TorchSharp graph vs ONNX Runtime (our export, the original ResNet18.onnx); import time: [--batch N]... [--threads 2]", OnnxBench.Run),
};

// A worker of the `isa` suite chooses its oneDNN kernels itself, before anything below loads LibTorch.
if (IsaBench.IsWorker(args)) return IsaBench.Worker(args);

// The serve suite measures what `transfer serve` runs: the command restricts oneDNN to AVX2 (the platform fault of
// AVX-512 convolutions beside busy threads) before LibTorch loads; `--avx512` measures without that.
if (args.Length > 0 && args[0].Equals("serve", StringComparison.OrdinalIgnoreCase) && !args.Contains("--avx512"))
    TransferSharp.Runtime.TorchRuntime.AvoidAvx512KernelFault();

// The benchmark host opts in to the process-wide tuning the `transfer` command applies (malloc, NNPACK off), so both
// measure the same. MKL's kernels are chosen by instruction set, not vendor, before anything runs a matrix product.
TransferSharp.Runtime.TorchRuntime.TuneAllocator();
TransferSharp.Runtime.TorchRuntime.UseMklIntelCodePath();
TransferSharp.Runtime.TorchRuntime.DisableNnpack();

TransferSharp.Onnx.OnnxZoo.Register(); // the host composes the zoo: resnet18_cntk from its own package
TransferSharp.Text.Transformers.MiniLmEncoder.Register(); // and the offline all-MiniLM-L6-v2 from its own
if (args.Length == 0 || !suites.TryGetValue(args[0], out var suite))
{
    Console.Error.WriteLine("usage: TransferSharp.Bench <suite> [options]\nsuites:");
    foreach (var (name, s) in suites) Console.Error.WriteLine($"  {name,-12} {s.Help}");
    return args.Length == 0 ? 0 : 2;
}
return suite.Run(args[1..]);
