using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>
/// The same model, built afresh with the same seed and run on the same input, gives the same logits every time in one
/// process. This is the reproduction of the flaky "non-finite logits at 256×256" of
/// <see cref="ZooStructureTests.Classifier_resets_and_other_input_sizes_run"/> (efficientnet_v2_s).
/// </summary>
/// <remarks>
/// Skipped: the cause lies below this library. Measured on this machine (AMD EPYC with AVX-512, LibTorch 2.10 through
/// TorchSharp 0.107, .NET 10, 2 intra-op threads), 12 repetitions per process (the test runs 24):
/// default settings, NaN in 3–9 of 12; without GraphModule.Run freeing any intermediate, still NaN in 9 of 12;
/// OMP_NUM_THREADS=1, 12 of 12 identical and finite; ONEDNN_MAX_CPU_ISA=AVX2, 12 of 12 identical and finite;
/// DOTNET_GCgen0size=0x30000000 (no GC during the run), 12 of 12 identical and finite.
/// At the first bad node (a 3×3 convolution run by oneDNN) the input and the weight are finite (|x| ≤ 1.8, |w| ≤ 0.2),
/// yet the output is NaN in a contiguous block of output channels (half of them: one thread's share); re-running
/// the convolution on fresh clones of both gives NaN again, so the state that is wrong lives in the native
/// convolution (oneDNN's AVX-512 kernel or its cache), not in the graph's tensors.
/// </remarks>
[Trait("Category", "Slow")]
public class RepeatedBuildDeterminismTests
{
    [Fact(Skip = "known native corruption in oneDNN's AVX-512 convolution under .NET GC; see the remarks (passes with ONEDNN_MAX_CPU_ISA=AVX2 or one thread)")]
    public void Fresh_networks_give_identical_finite_logits()
    {
        float? first = null;
        for (int rep = 0; rep < 24; rep++)
        {
            using var scope = NewDisposeScope();
            using var net = ModelZoo.Create("efficientnet_v2_s");
            net.ResetClassifier(5);
            net.eval();
            // Grad stays enabled: no op then runs in place, so only the native kernels can make repetitions differ.
            using var generator = new Generator(1234);
            var x = rand([1, 3, 256, 256], generator: generator) * 2 - 1;
            var logits = net.forward(x);
            Assert.True(logits.isfinite().all().item<bool>(), $"repetition {rep}: non-finite logits");
            float sum = logits.abs().sum().item<float>();
            first ??= sum;
            Assert.Equal(first.Value, sum);
        }
    }
}
