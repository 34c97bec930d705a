using TransferSharp.Data;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

/// <summary>Mixup and CutMix: images and targets blended by the same λ, CutMix's λ the pasted area.</summary>
[Trait("Category", "Training")]
public sealed class BatchMixingTests
{
    // Image i is filled with the value i, so every pixel tells which image it came from.
    private static (Tensor Images, Tensor Labels) Batch(int n) =>
        (arange(n, dtype: ScalarType.Float32).reshape(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous(), arange(n, dtype: ScalarType.Int64));

    [Fact]
    public void MixupBlendsImagesAndTargetsWithOneWeight()
    {
        var (x, y) = Batch(6);
        var (mixed, targets) = BatchMixing.Apply(x, y, 6, 0.8, 0, new Random(1));
        Assert.Equal(new long[] { 6, 6 }, targets.shape);
        for (int i = 0; i < 6; i++)
        {
            var row = targets[i].data<float>().ToArray();
            Assert.Equal(1.0, row.Sum(), 5);
            // The pixel value is λ·i + (1 − λ)·j, and so is the expected class index under the target.
            double expected = row.Select((p, c) => p * c).Sum();
            Assert.Equal(expected, mixed[i, 0, 0, 0].item<float>(), 4);
            Assert.True(mixed[i].eq(mixed[i, 0, 0, 0]).all().item<bool>());
        }
    }

    [Fact]
    public void CutMixPastesABoxAndWeighsTheTargetsByItsArea()
    {
        var (x, y) = Batch(4);
        for (int seed = 0; seed < 10; seed++)
        {
            var (mixed, targets) = BatchMixing.Apply(x, y, 4, 0, 1.0, new Random(seed));
            for (int i = 0; i < 4; i++)
            {
                var own = mixed[i].eq(i).to(ScalarType.Float32).mean().item<float>();
                var row = targets[i].data<float>().ToArray();
                Assert.Equal(1.0, row.Sum(), 5);
                if (row[i] < 1) Assert.Equal(row[i], own, 5); // the own label's share is the area still its own
            }
        }
    }

    [Fact]
    public void BetaDrawsHaveTheDistributionsMean()
    {
        var random = new Random(3);
        double mean = Enumerable.Range(0, 20000).Select(_ => BatchMixing.Beta(0.4, random)).Average();
        Assert.Equal(0.5, mean, 1);
    }

    [Theory]
    [InlineData(0.8, 0.0)]
    [InlineData(0.0, 1.0)]
    [InlineData(0.8, 1.0)]
    public void Mixing_leaves_no_tensor_to_the_garbage_collector(double mixup, double cutMix)
    {
        // A temporary left to the finalizer thread is what crashed a CutMix fine-tuning run with SIGSEGV at its seventh
        // epoch (../shared/notes/torchsharp-memory.md): every tensor Apply makes is disposed or returned.
        using var scope = NewDisposeScope();
        var (x, y) = Batch(8);
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;
        for (int seed = 0; seed < 20; seed++)
        {
            var (mixed, targets) = BatchMixing.Apply(x, y, 8, mixup, cutMix, new Random(seed));
            mixed.Dispose();
            targets.Dispose();
        }
        Assert.Equal(before, stats.ThreadTotalLiveCount);
    }
}
