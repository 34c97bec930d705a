using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>The one-cycle schedule (fastai's <c>fit_one_cycle</c> rate: div 25, div_final 1e5) and the discriminative
/// rates' option check.</summary>
public class OneCycleScheduleTests
{
    [Fact]
    public void Rises_from_a_25th_to_the_base_rate_over_the_first_quarter_then_falls_to_1e_5()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.OneCycle, WarmupSteps: 0, TotalSteps: 100, StepsPerEpoch: 10, StepEpochs: 1, Gamma: 1, MinFactor: 0);
        var factors = Enumerable.Range(0, 100).Select(i => schedule.Factor(i)).ToArray();
        Assert.Equal(1.0 / 25, factors[0], 12);
        Assert.Equal(1.0, factors[24], 12); // the top at the end of the first quarter
        Assert.Equal(1.0, factors[25], 12); // and the descent starts from it
        Assert.Equal(1e-5, factors[99], 12);
        for (int i = 1; i < 25; i++) Assert.True(factors[i] > factors[i - 1], $"step {i} rises");
        for (int i = 26; i < 100; i++) Assert.True(factors[i] < factors[i - 1], $"step {i} falls");
        // Halfway down the cosine: the mean of the two ends.
        var mid = new LearningRateSchedule(ScheduleKind.OneCycle, 0, 9, 9, 1, 1, 0);
        Assert.Equal((1 + 1e-5) / 2, mid.Factor(2 + 3), 12); // up = round(2.25) = 2 steps, then 7 steps down: step 5 is the middle
    }

    [Fact]
    public void A_warm_up_sets_the_length_of_the_rise()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.OneCycle, WarmupSteps: 10, TotalSteps: 40, StepsPerEpoch: 10, StepEpochs: 1, Gamma: 1, MinFactor: 0);
        Assert.Equal(1.0 / 25, schedule.Factor(0), 12);
        Assert.Equal(1.0, schedule.Factor(9), 12);
        Assert.Equal(1e-5, schedule.Factor(39), 12);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Layer_decay_outside_0_to_1_is_refused(double decay)
    {
        var e = Assert.Throws<InvalidOptionException>(() => new TrainOptions { LayerDecay = decay }.Validate());
        Assert.Contains("LayerDecay", e.Message);
    }
}
