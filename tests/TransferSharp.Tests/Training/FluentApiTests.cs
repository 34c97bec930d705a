using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Vision.Graph;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class FluentApiTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void TrainSaveEvaluatePredictInAFewCalls()
    {
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "train"), 6, "bag", "trouser"));
        var epochs = new List<EpochRecord>();
        using var model = Transfer.From("resnet18").WithWeights("none").WithImageSize(32)
            .Train(train)
            .ValidateOn(train)
            .Head(epochs: 3, HeadKind.Mlp)
            .WithOptions(o => o with { LearningRate = 1e-2, Seed = 1 })
            .Checkpoint(Path.Combine(_dir, "run.ckpt"))
            .Report(null, epochs.Add)
            .Run();
        Assert.Equal(3, epochs.Count);
        Assert.Equal(HeadKind.Mlp, model.Architecture!.Head.Kind);
        Assert.Equal(12, model.Training!.ValidationSamples);
        var path = Path.Combine(_dir, "m.safetensors");
        model.Save(path);

        var report = model.Evaluate(train, new EvaluateOptions { TopK = 2 });
        Assert.Equal(12, report.Count);
        Assert.Equal(1.0, report.TopKAccuracy); // two classes: the true one is always in the top 2
        var predictions = model.Predict([train.SourceOf(0)], top: 2);
        Assert.Equal(2, predictions[0].Top.Count);

        // A saved model file is a starting point too: its pooled features.
        var features = Transfer.From(path).ExtractFeatures(train, Path.Combine(_dir, "f.csv"));
        Assert.Equal(512, features.Dimension);
        Assert.True(File.Exists(Path.Combine(_dir, "f.csv")));
    }

    [Fact]
    public void FineTune_takes_the_recipe_of_the_command_and_the_arguments_given()
    {
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "ft"), 2, "bag", "trouser"));
        var run = Transfer.From("resnet18").Train(data).WithOptions(o => o with { Seed = 7, LearningRate = 0.5 }).FineTune();
        var recipe = TrainOptions.FineTuneFromHead(run.Options.Head);
        Assert.Equal(TrainMode.FineTune, run.Options.Mode);
        Assert.Equal(TrainOptions.FineTuneEpochs, run.Options.Epochs);
        Assert.Equal(TrainOptions.UnfreezeAllButStem, run.Options.UnfreezeTop);
        Assert.Null(run.Options.HeadEpochs); // the head by L-BFGS on cached features, as --mode finetune
        Assert.Equal(recipe.LearningRate, run.Options.LearningRate); // the recipe's rate replaces the earlier one
        Assert.Equal(recipe.Schedule, run.Options.Schedule);
        Assert.Equal(recipe.Augmentation, run.Options.Augmentation);
        Assert.Equal(recipe.LabelSmoothing, run.Options.LabelSmoothing);
        Assert.Equal(7, run.Options.Seed); // settings outside the recipe stay

        var given = run.FineTune(epochs: 3, unfreeze: 2, headEpochs: 1).WithOptions(o => o with { LearningRate = 1e-4 });
        Assert.Equal((3, 2, 1, 1e-4), (given.Options.Epochs, given.Options.UnfreezeTop, given.Options.HeadEpochs, given.Options.LearningRate));
    }

    [Fact]
    public void HeadTrainsOnCachedFeaturesAndLearnsSeparableClasses()
    {
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        var random = new Random(2);
        var model = source;
        Trainer.TrainHead(source, TrainingData.Features(300, random), TrainingData.Features(90, random),
            new TrainOptions { HeadSolver = HeadSolver.Epochs, Epochs = 15, LearningRate = 1e-2, L2 = 1e-3 });
        Assert.True(model.Training!.BestValidationAccuracy > 0.9, $"validation accuracy {model.Training.BestValidationAccuracy}");
        Assert.Equal(["x", "y", "z"], model.Labels);
        Assert.Equal(["head"], model.Training.TrainedGroups);
        Assert.Throws<TransferSharpException>(() => Trainer.TrainHead(source, new FeatureSet(new float[6], 3, [0, 1], ["a", "b"], ["x", "y"]), null, new TrainOptions()));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FreezeBatchNormKeepsRunningStatisticsOfUnfrozenGroups(bool freeze)
    {
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "train"), 4, "bag", "trouser"));
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        float Stat(TorchSharp.torch.nn.Module m, string layer = "layer4") => m.state_dict()[layer + ".1.bn2.running_mean"].abs().sum().item<float>();
        float before = Stat(source.Module), frozenBefore = Stat(source.Module, "layer3");
        var options = new TrainOptions { Mode = TrainMode.FineTune, Epochs = 1, HeadEpochs = 0, UnfreezeTop = 2, BatchSize = 4, ValidationSplit = 0, FreezeBatchNorm = freeze };
        var model = source;
        Trainer.Train(source, train, null, options);
        Assert.Equal(["layer4", "head"], model.Training!.TrainedGroups);
        if (freeze) Assert.Equal(before, Stat(model.Module));
        else Assert.NotEqual(before, Stat(model.Module));
        Assert.Equal(frozenBefore, Stat(model.Module, "layer3")); // a frozen group's BatchNorm never updates
    }

    [Fact]
    public void TrainingChangesTheModelInPlaceWithoutCopyingItsBody()
    {
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "train"), 4, "bag", "trouser"));
        using var model = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        Assert.Equal(1000, model.NumClasses);
        nint Storage(string name) => model.Module.named_parameters().Single(p => p.name == name).parameter.Handle;
        var body = Storage("layer4.1.conv2.weight");
        var options = new TrainOptions { Mode = TrainMode.FineTune, Epochs = 1, HeadEpochs = 0, UnfreezeTop = 2, BatchSize = 4, ValidationSplit = 0 };
        var record = Trainer.Train(model, train, null, options);

        Assert.Equal(body, Storage("layer4.1.conv2.weight")); // the body trained where it was loaded: no copy
        Assert.Same(record, model.Training);
        Assert.Equal(["bag", "trouser"], model.Labels);
        Assert.Equal(2, model.NumClasses);
        Assert.Equal(2, model.Architecture!.NumClasses);
        Assert.Equal(["fc.bias", "fc.weight"], model.Module.state_dict().Keys.Where(k => k.StartsWith("fc.", StringComparison.Ordinal)).Order());

        // A head trained for exactly these classes continues; a head for other classes starts afresh.
        float[] Fc() => model.Module.state_dict()["fc.weight"].data<float>().ToArray();
        var trained = Fc();
        Trainer.PrepareModel(model, ["bag", "trouser"], options);
        Assert.Equal(trained, Fc());
        Trainer.PrepareModel(model, ["coat", "sandal"], options);
        Assert.NotEqual(trained, Fc());
        Assert.Equal(body, Storage("layer4.1.conv2.weight"));
    }

    [Fact]
    public void Small_images_train_at_five_times_their_side_not_at_the_weights_size()
    {
        var garments = ImageDataset.FromFolder(Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset", "train"));
        Assert.Equal(28, garments.TypicalShortSide());
        Assert.Equal(160, Transfer.From("resnet18").ImageSizeFor(garments)); // 5 × 28 = 140, up to a multiple of 32
        Assert.Equal(96, Transfer.From("resnet18").WithImageSize(96).ImageSizeFor(garments)); // asked for: kept
        var photos = Directory.GetFiles(Path.Combine(Paths.TestData, "photos"), "*.jpg");
        var large = new ImageDataset(photos, photos.Select(_ => 0).ToArray(), ["photo"]);
        Assert.Null(Transfer.From("resnet18").ImageSizeFor(large)); // photos keep the weights' size
    }

    [Fact]
    public void Auto_mode_fits_the_head_then_keeps_fine_tuning_only_when_validation_says_it_helps()
    {
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "auto"), 6, "bag", "trouser"));
        var extractions = 0; // passes of the frozen body over a whole data set, counted from the progress reports
        VisionModel Run(int minImages, TimeSpan? budget = null) => Transfer.From("resnet18").WithWeights("none").WithImageSize(32).Train(train).ValidateOn(train)
            .WithOptions(o => o with { Mode = TrainMode.Auto, AutoMinTrainImages = minImages, AutoBudget = budget ?? o.AutoBudget, Seed = 1 })
            .Report(new SyncProgress(p => { if (p is { Phase: "extract" } && p.Done == p.Total) extractions++; })).Run();
        static void AssertSameWeights(VisionModel a, VisionModel b)
        {
            foreach (var (name, t) in a.Module.state_dict())
                Assert.True(t.equal(b.Module.state_dict()[name]).all().item<bool>(), name);
        }

        // Too few images: the head exactly as head mode fits it (refitted on training + validation data).
        using var small = Run(minImages: 500);
        Assert.StartsWith("head only: 12 training images", small.Training!.Decision);
        Assert.Equal(TrainMode.Head, small.Training.Options.Mode);
        Assert.Equal(24, small.Training.HeadFit!.FinalFitSamples);

        // Fine-tuning estimated over the budget (before anything is fitted): the head, and the reason; its features are
        // extracted once (training and validation set: two passes), as head mode's are.
        extractions = 0;
        using var hurried = Run(minImages: 0, budget: TimeSpan.Zero);
        Assert.Equal(2, extractions);
        Assert.Matches("^head: fine-tuning 8 epochs of 12 images would take about .* min, over the budget of 0 min$", hurried.Training!.Decision);
        AssertSameWeights(small, hurried);

        extractions = 0;
        using var tried = Run(minImages: 0);
        var decision = tried.Training!.Decision!;
        if (decision.StartsWith("fine-tuned", StringComparison.Ordinal))
        {
            // Judged as the head is: the validation accuracy of a classifier fitted on the training split's features.
            Assert.Equal(TrainMode.FineTune, tried.Training.Options.Mode);
            var refit = tried.Training.ClassifierRefit!;
            Assert.True(refit.ChosenValidationAccuracy > small.Training.BestValidationAccuracy);
            // The split head's features once (fine-tuning starts from that head), the fine-tuned body's once for the refit.
            Assert.Equal(4, extractions);
        }
        else
        {
            // The head's weights came back and were refitted: the same model as the head-only run.
            Assert.StartsWith("head: fine-tuning reached", decision);
            Assert.Equal(TrainMode.Head, tried.Training.Options.Mode);
            AssertSameWeights(small, tried);
            // The split head's features, the fine-tuned body's (the refit that scores it), the pretrained body's again (the
            // kept head's refit on training + validation data).
            Assert.Equal(6, extractions);
        }
    }

    [Fact]
    public void Fine_tuning_with_every_ingredient_leaves_no_tensor_to_the_garbage_collector()
    {
        // A tensor left to the finalizer thread can crash the process (../shared/notes/torchsharp-memory.md; a CutMix run
        // did, at its seventh epoch). A second run on the same model makes no new parameters, so whatever it leaves alive on
        // this thread it leaked. The epoch loop alone (a head trained by epochs, no refit): feature extraction's predictor
        // (BatchNorm folded) is left out.
        var train = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "leak"), 6, "bag", "trouser"));
        using var model = Transfer.From("resnet18").WithWeights("none").WithImageSize(32).Open();
        var options = TrainOptions.FineTuneFromHead(new HeadSpec(), 3) with
        {
            HeadEpochs = 1, RefitHead = false, ValidationSplit = 0.25, Seed = 1, EmaDecay = 0.9, Mixup = 0.8, CutMix = 1.0,
            GradualUnfreeze = true, LayerDecay = 0.7, Loader = new LoaderOptions { BatchSize = 4, Workers = 1 },
        };
        // With a checkpoint written every epoch (a file of its own per run, deleted when the run completes).
        TrainRunOptions Run(string name) => new() { Checkpoint = new CheckpointOptions { Path = Path.Combine(_dir, name + ".ckpt") } };
        Trainer.Train(model, train, null, options, Run("first"));
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;
        Trainer.Train(model, train, null, options, Run("second"));
        Assert.Equal(before, stats.ThreadTotalLiveCount);
    }

    private sealed class SyncProgress(Action<ProgressInfo> report) : IProgress<ProgressInfo>
    {
        public void Report(ProgressInfo value) => report(value);
    }
}
