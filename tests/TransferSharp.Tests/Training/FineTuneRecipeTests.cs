using TransferSharp.Tests.Support;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>`transfer train --mode finetune` runs the fine-tuning recipe (<see cref="TrainOptions.FineTuneFromHead"/>, the one
/// --mode auto and the demo run) from the L-BFGS head of the training split (not the head refitted on the validation images).</summary>
[Collection("Console")]
[Trait("Category", "Training")]
public sealed class FineTuneRecipeTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private TrainingRecord Train(string name, params string[] options)
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 5, "bag", "coat", "sandal");
        var model = Path.Combine(_dir, name + ".safetensors");
        CliRunner.RunJson(["train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--mode", "finetune", .. options, "--out", model]);
        using var trained = VisionModel.Load(model);
        return trained.Training!;
    }

    [Fact]
    public void Finetune_defaults_are_the_recipe_from_the_split_head()
    {
        var recipe = TrainOptions.FineTuneFromHead(new HeadSpec());
        var record = Train("recipe", "--epochs", "2");
        var o = record.Options;
        Assert.Equal((recipe.LearningRate, recipe.BodyLearningRateFactor, recipe.Schedule, recipe.WarmupEpochs, recipe.LabelSmoothing, recipe.FreezeBatchNorm),
            (o.LearningRate, o.BodyLearningRateFactor, o.Schedule, o.WarmupEpochs, o.LabelSmoothing, o.FreezeBatchNorm));
        Assert.Equal((recipe.UnfreezeTop, recipe.UnfreezeFrom), (o.UnfreezeTop, o.UnfreezeFrom));
        Assert.Equal(recipe.Augmentation, o.Augmentation);
        Assert.Null(o.HeadEpochs);
        Assert.Equal(2, o.Epochs);

        // Stage 1 is the L-BFGS head on cached features of the split (12 training, 3 validation images), not epochs.
        Assert.NotNull(record.HeadFit);
        Assert.Equal(12, record.HeadFit!.FinalFitSamples);
        Assert.All(record.History, e => Assert.Equal(2, e.Stage));
        Assert.Equal(2, record.History.Count);
        Assert.NotNull(record.BestValidationAccuracy);
        Assert.Equal(12, record.TrainSamples);

        // At the end the classifier is fitted again on the fine-tuned body's features: λ chosen on the 3 validation
        // images, then all 15; the validation scores stay those of the epochs.
        Assert.NotNull(record.ClassifierRefit);
        Assert.Equal(15, record.ClassifierRefit!.FinalFitSamples);
        Assert.Equal(record.History[record.BestEpoch - 1].ValidationAccuracy, record.BestValidationAccuracy);
    }

    [Fact]
    public void The_classifier_refit_is_head_modes_fit_on_the_fine_tuned_body()
    {
        // Fine-tuning's label smoothing must not leak into the refit: the same λ path as head mode on the saved model.
        var tuned = Train("tuned", "--epochs", "1");
        var data = Path.Combine(_dir, "data");
        var head = Path.Combine(_dir, "head.safetensors");
        CliRunner.RunJson(["train", "--model", Path.Combine(_dir, "tuned.safetensors"), "--data", data, "--mode", "head", "--out", head]);
        using var refitted = VisionModel.Load(head);
        var expected = refitted.Training!.HeadFit!.Candidates.Select(c => (c.L2, c.ValidationLoss)).ToArray();
        Assert.Equal(expected, tuned.ClassifierRefit!.Candidates.Select(c => (c.L2, c.ValidationLoss)).ToArray());
    }

    [Fact]
    public void No_refit_head_keeps_the_fine_tuned_classifier()
    {
        var record = Train("kept", "--epochs", "1", "--no-refit-head");
        Assert.Null(record.ClassifierRefit);
        Assert.False(record.Options.RefitHead);
        // Without validation data there is nothing to choose λ on: the fine-tuned classifier stays.
        Assert.Null(Train("noval", "--epochs", "1", "--val-split", "0").ClassifierRefit);
    }

    [Fact]
    public void Flags_override_the_recipe()
    {
        var record = Train("custom", "--epochs", "1", "--lr", "5e-4", "--unfreeze-from", "layer4", "--schedule", "cosine", "--crop-scale", "0.6",
            "--no-flip", "--label-smoothing", "0");
        var o = record.Options;
        Assert.Equal((5e-4, ScheduleKind.Cosine, 0.0, "layer4", (int?)null), (o.LearningRate, o.Schedule, o.LabelSmoothing, o.UnfreezeFrom, o.UnfreezeTop));
        Assert.Equal((0.6, 1.0), o.Augmentation!.Scale);
        Assert.False(o.Augmentation.HorizontalFlip);
        Assert.Contains("layer4", record.TrainedGroups);
    }

    [Fact]
    public void Head_epochs_keep_the_old_two_stage_schedule()
    {
        var record = Train("stages", "--epochs", "2", "--head-epochs", "1");
        Assert.Null(record.HeadFit);
        Assert.Equal([1, 2], record.History.Select(e => e.Stage).ToArray());
    }
}
