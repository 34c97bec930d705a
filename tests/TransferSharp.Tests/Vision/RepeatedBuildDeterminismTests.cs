using TransferSharp.Runtime;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Vision;

/// <summary>
/// The same model, built afresh with the same seed and run on the same input, gives the same logits every time in one
/// process, while another thread allocates so that the GC suspends the computing threads often. This is the
/// reproduction of the flaky "non-finite logits at 256×256" of
/// <see cref="ZooStructureTests.Classifier_resets_and_other_input_sizes_run"/> (efficientnet_v2_s).
/// </summary>
/// <remarks>
/// The cause lies below this library: on Linux x64 with AVX-512 (this project's AMD EPYC), LibTorch's oneDNN AVX-512
/// convolutions return NaN while another thread of the process is busy beside them — an allocating thread (GC), even a
/// merely spinning one (docs/reliability.md, "Known platform fault"). Measured before the mitigation, 12 repetitions per
/// process: NaN in 3–9 of 12; with ONEDNN_MAX_CPU_ISA=AVX2, 12 of 12 identical and finite. The test host restricts oneDNN
/// to AVX2 in its module initializer (<see cref="TransferSharp.Tests.Support.Composition"/>), as the `transfer` command
/// does, so these pass. Without it (TRANSFERSHARP_AVX512=1) they are not a reliable detector: in the test host the two
/// convolution tests passed on Dec 1 (the plain one ran first), although a small program fails most such convolutions — the
/// fault needs conditions not yet pinned down (docs/reliability.md). That the fault still exists without the mitigation
/// is therefore checked by `TransferSharp.Bench isa`, first thing in fresh worker processes (a benchmark, not a unit test).
/// </remarks>
[Trait("Category", "Slow")]
public class RepeatedBuildDeterminismTests
{
    [Fact]
    public void The_test_host_runs_onednn_without_its_avx512_kernels() =>
        Assert.Contains(TorchRuntime.Avx512Mitigation, new[]
        {
            Avx512KernelFaultMitigation.Applied, Avx512KernelFaultMitigation.SetByEnvironment, Avx512KernelFaultMitigation.NotApplicable,
        });

    [Fact]
    public void Fresh_networks_give_identical_finite_logits_under_gc_pressure()
    {
        using var churn = new AllocationChurn();
        float? first = null;
        for (int rep = 0; rep < 2; rep++)
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
        Assert.True(churn.Collections > 0, "the allocating thread caused no GC: the test did not test what it says");
    }

    [Fact]
    public void A_repeated_convolution_stays_finite_and_equal_under_gc_pressure()
    {
        // The program of docs/reliability.md: without the mitigation, about 9 in 10 of these convolutions return NaN.
        using var generator = new Generator(1);
        using var x = rand([1, 24, 128, 128], generator: generator) * 2 - 1;
        using var w = randn([96, 24, 3, 3], generator: generator) * 0.1;
        using var _ = no_grad();
        using var reference = nn.functional.conv2d(x, w, padding: [1, 1]);
        using var churn = new AllocationChurn();
        for (int i = 0; i < 8; i++)
        {
            using var scope = NewDisposeScope();
            var y = nn.functional.conv2d(x.clone(), w.clone(), padding: [1, 1]);
            Assert.True(y.isfinite().all().item<bool>(), $"convolution {i}: NaN");
            Assert.True(y.allclose(reference, 1e-5, 1e-6), $"convolution {i}: differs from the first");
        }
        Assert.True(churn.Collections > 0, "the allocating thread caused no GC: the test did not test what it says");
    }

    /// <summary>A thread allocating small managed arrays until disposed, so that the GC suspends the other threads often.</summary>
    private sealed class AllocationChurn : IDisposable
    {
        private readonly Thread thread;
        private readonly int collectionsAtStart = GC.CollectionCount(0);
        private volatile bool stop;

        public AllocationChurn()
        {
            thread = new Thread(() =>
            {
                var keep = new List<byte[]>();
                while (!stop) { keep.Add(new byte[4096]); if (keep.Count > 20000) keep.Clear(); }
            }) { IsBackground = true };
            thread.Start();
        }

        public int Collections => GC.CollectionCount(0) - collectionsAtStart;

        public void Dispose()
        {
            stop = true;
            thread.Join();
        }
    }
}
