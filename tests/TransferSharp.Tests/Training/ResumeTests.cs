using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Vision.Graph;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Training;

/// <summary>A run killed mid-epoch and resumed from its checkpoint ends with the same weights as an uninterrupted run.</summary>
[Trait("Category", "Training")]
public sealed class ResumeTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private static TrainOptions FineTune => new()
    {
        Mode = TrainMode.FineTune,
        Epochs = 3,
        HeadEpochs = 1,
        UnfreezeTop = 2,
        BatchSize = 6,
        AccumulationSteps = 2,
        LearningRate = 3e-3,
        WarmupEpochs = 0.5,
        LabelSmoothing = 0.1,
        Head = new HeadSpec { Kind = HeadKind.Mlp, Hidden = 16, Dropout = 0.3 },
        Augmentation = Augmentation.WithJitter(0.2),
        ValidationSplit = 0.25,
        Seed = 7,
        Loader = new LoaderOptions { Workers = 2 },
    };

    private Dictionary<string, float[]> Run(TrainOptions options, string checkpoint, bool resume, int cancelAfterBatches, out bool cancelled,
        string architecture = "resnet18", double? dropPathRate = null)
    {
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "data"), 8, "bag", "sandal", "trouser"));
        using var source = VisionModel.Load(architecture, "none", new ModelOptions { ImageSize = 32, DropPathRate = dropPathRate });
        using var cts = new CancellationTokenSource();
        int batches = 0;
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == "train" && cancelAfterBatches > 0 && ++batches == cancelAfterBatches) cts.Cancel();
        });
        var run = new TrainRunOptions { Checkpoint = new CheckpointOptions { Path = checkpoint, Resume = resume }, Progress = progress };
        cancelled = false;
        try
        {
            var model = source;
            Trainer.Train(source, data, null, options, run, cts.Token);
            return model.Module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());
        }
        catch (OperationCanceledException)
        {
            cancelled = true;
            return [];
        }
    }

    [Theory]
    [InlineData("plain", 5)]
    // Every issue-12 ingredient on (weight average, mixup and CutMix, the one-cycle schedule, discriminative rates over
    // two body groups, gradual unfreezing: layer3 joins in epoch 3), killed in epoch 3: the resumed stage takes the average from the checkpoint, mixes its batches and
    // sets each group's rate as the uninterrupted run did.
    [InlineData("ingredients", 8)]
    // The default recipe (linear head, BatchNorm statistics frozen, label smoothing, crops), killed in epoch 2: the resumed
    // run ends on the same best epoch, and the classifier refitted after it is the same.
    [InlineData("recipe", 5)]
    public void FineTuningKilledMidEpochResumesToTheSameWeights(string variant, int killAtBatch)
    {
        var options = variant switch
        {
            "ingredients" => FineTune with { EmaDecay = 0.9, Mixup = 0.8, CutMix = 1.0, Schedule = ScheduleKind.OneCycle, LayerDecay = 0.5, UnfreezeTop = 3, GradualUnfreeze = true },
            "recipe" => TrainOptions.FineTuneFromHead(new HeadSpec(), epochs: 3) with { BatchSize = 6, ValidationSplit = 0.25, Seed = 7, Loader = new LoaderOptions { Workers = 2 } },
            _ => FineTune,
        };
        var reference = Run(options, Path.Combine(_dir, "a.ckpt"), false, 0, out _);
        Assert.False(File.Exists(Path.Combine(_dir, "a.ckpt")), "a completed run deletes its checkpoint");

        // 18 training images, batches of 6: 3 per epoch. Batch 5 is the middle of epoch 2 (stage 2), batch 8 of epoch 3.
        var ckpt = Path.Combine(_dir, "b.ckpt");
        Run(options, ckpt, false, killAtBatch, out bool cancelled);
        Assert.True(cancelled);
        Assert.True(File.Exists(ckpt), "the checkpoint of epoch 1 must survive the kill");
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
        var resumed = Run(options, ckpt, true, 0, out cancelled);
        Assert.False(cancelled);
        AssertSame(reference, resumed);
    }

    /// <summary>Gradual unfreezing's first stage-2 epoch trains the head and the top body group only: unfreezing three
    /// groups gradually over one stage-2 epoch gives exactly the weights of unfreezing two.</summary>
    [Fact]
    public void GradualUnfreezingStartsWithTheTopBodyGroupOnly()
    {
        var oneEpoch = FineTune with { Epochs = 2, HeadEpochs = 1 };
        var gradual = Run(oneEpoch with { UnfreezeTop = 3, GradualUnfreeze = true }, Path.Combine(_dir, "g.ckpt"), false, 0, out _);
        var two = Run(oneEpoch with { UnfreezeTop = 2 }, Path.Combine(_dir, "t.ckpt"), false, 0, out _);
        var three = Run(oneEpoch with { UnfreezeTop = 3 }, Path.Combine(_dir, "h.ckpt"), false, 0, out _);
        AssertSame(two, gradual);
        Assert.Contains(three, kv => kv.Key.StartsWith("layer3.", StringComparison.Ordinal) && !kv.Value.SequenceEqual(two[kv.Key]));
    }

    /// <summary>ViT-S/16 at 32 px with stochastic depth: the resumed run draws the same per-sample drop-path masks as the
    /// uninterrupted one (the masks come from the module's generator, whose state the checkpoint holds).</summary>
    [Fact]
    public void VitWithDropPathKilledMidEpochResumesToTheSameWeights()
    {
        var options = FineTune with { Epochs = 2, Head = new HeadSpec(), Augmentation = null };
        var reference = Run(options, Path.Combine(_dir, "a.ckpt"), false, 0, out _, "vit_small_patch16_224", 0.2);
        var ckpt = Path.Combine(_dir, "b.ckpt");
        Run(options, ckpt, false, 5, out bool cancelled, "vit_small_patch16_224", 0.2);
        Assert.True(cancelled);
        var resumed = Run(options, ckpt, true, 0, out _, "vit_small_patch16_224", 0.2);
        AssertSame(reference, resumed);
    }

    [Fact]
    public void HeadTrainingKilledMidEpochResumesToTheSameWeights()
    {
        var options = new TrainOptions { Mode = TrainMode.Head, HeadSolver = HeadSolver.Epochs, Epochs = 4, BatchSize = 4, Head = new HeadSpec { Dropout = 0.5 }, Seed = 3, ValidationSplit = 0.25 };
        var reference = Run(options, Path.Combine(_dir, "a.ckpt"), false, 0, out _);
        var ckpt = Path.Combine(_dir, "b.ckpt");
        Run(options, ckpt, false, 12, out bool cancelled); // 18 samples / 4 = 5 batches an epoch: batch 12 is in epoch 3
        Assert.True(cancelled);
        var resumed = Run(options, ckpt, true, 0, out _);
        AssertSame(reference, resumed);
    }

    [Fact]
    public void ResumingWithOtherSettingsIsRefused()
    {
        var ckpt = Path.Combine(_dir, "c.ckpt");
        var options = new TrainOptions { Mode = TrainMode.Head, HeadSolver = HeadSolver.Epochs, Epochs = 3, BatchSize = 4, Seed = 3 };
        Run(options, ckpt, false, 7, out bool cancelled);
        Assert.True(cancelled);
        var e = Assert.Throws<ModelFileException>(() => Run(options with { LearningRate = 0.5 }, ckpt, true, 0, out _));
        Assert.Contains("other settings", e.Message);
    }

    private static void AssertSame(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        double worst = 0;
        string worstName = "";
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            for (int i = 0; i < e.Length; i++)
            {
                double d = Math.Abs(e[i] - a[i]);
                if (d > worst) { worst = d; worstName = name; }
            }
        }
        // Bit-identical: on the CPU with a fixed thread count every op is deterministic, and the resumed run
        // restores the optimizer, schedule and generator state and replays the same data order and augmentation.
        Assert.True(worst == 0, $"largest difference {worst:G3} in '{worstName}'");
    }

    /// <summary>Progress reported synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<ProgressInfo> action) : IProgress<ProgressInfo>
    {
        public void Report(ProgressInfo value) => action(value);
    }
}
