using TorchSharp;
using TransferSharp.Training;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

/// <summary>The exponential moving average of the weights: its arithmetic, warm-up and swapping.</summary>
[Trait("Category", "Training")]
public sealed class WeightAverageTests
{
    [Fact]
    public void AverageFollowsTheWeightsWithTheWarmedUpDecayAndSwapsInAndOut()
    {
        using var layer = nn.Linear(2, 1, hasBias: false);
        using (no_grad()) layer.weight!.copy_(tensor(new float[] { 0, 0 }).reshape(1, 2));
        using var average = new WeightAverage(layer, 0.5, _ => true);

        // Step 0: decay min(0.5, 1/10) = 0.1, so the average moves 90 % of the way to the new weights.
        using (no_grad()) layer.weight!.copy_(tensor(new float[] { 10, 20 }).reshape(1, 2));
        average.Update(0);
        // Step 10: decay min(0.5, 11/20) = 0.5.
        using (no_grad()) layer.weight!.copy_(tensor(new float[] { 20, 40 }).reshape(1, 2));
        average.Update(10);
        float[] expected = [0.5f * 9 + 0.5f * 20, 0.5f * 18 + 0.5f * 40];

        using (average.Swapped())
            Assert.Equal(expected, layer.weight!.data<float>().ToArray());
        Assert.Equal(new float[] { 20, 40 }, layer.weight!.data<float>().ToArray());

        average.CopyInto();
        Assert.Equal(expected, layer.weight!.data<float>().ToArray());
    }

    [Fact]
    public void DecayOutsideZeroToOneIsRefused()
    {
        var e = Assert.Throws<InvalidOptionException>(() => new TrainOptions { EmaDecay = 1 }.Validate());
        Assert.Equal("EmaDecay", e.Option);
    }
}
