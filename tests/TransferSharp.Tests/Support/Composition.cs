using System.Runtime.CompilerServices;
using TransferSharp.Runtime;

namespace TransferSharp.Tests.Support;

/// <summary>The test host's composition root: the zoo gets resnet18_cntk and the weight registry the
/// offline all-MiniLM-L6-v2 from their own packages, as the CLI does.</summary>
internal static class Composition
{
#pragma warning disable CA2255 // the test assembly is a host: it composes the library once, before any test runs
    [ModuleInitializer]
    internal static void Compose()
    {
        // Like the `transfer` command, before any test can load LibTorch: oneDNN's AVX-512 convolutions return NaN while
        // another thread of the process is busy (docs/reliability.md), which made the suite flaky. TRANSFERSHARP_AVX512=1
        // keeps them.
        if (TorchRuntime.AvoidAvx512KernelFault() == Avx512KernelFaultMitigation.TooLate)
            throw new InvalidOperationException("LibTorch loaded before the test host's module initializer: oneDNN could not be restricted to AVX2");
        TorchRuntime.UseMklIntelCodePath(); // MKL's kernels by instruction set, as the `transfer` command runs them
        global::TransferSharp.Onnx.OnnxZoo.Register();
        global::TransferSharp.Text.Transformers.MiniLmEncoder.Register();
    }
#pragma warning restore CA2255
}
