using Spectre.Console.Cli;
using TransferSharp.Cli;
using TransferSharp.Cli.Commands;

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("transfer");
    config.SetApplicationVersion(typeof(TransferSharp.Vision.Zoo.ModelZoo).Assembly.GetName().Version?.ToString(3) ?? "0");
    config.SetExceptionHandler((ex, _) => ErrorReporter.Report(ex));

    config.AddCommand<DoctorCommand>("doctor")
        .WithDescription("Show which LibTorch loaded, from where, with how many threads, and whether the Debian 12 fix applied.");
    config.AddCommand<ModelsCommand>("models")
        .WithDescription("List the model zoo: names, Keras aliases, sizes, parameter counts and pretrained weight tags.")
        .WithExample("models")
        .WithExample("models", "--json");
    config.AddCommand<PredictCommand>("predict")
        .WithDescription("Classify images with a pretrained or trained model: top-k labels with probabilities. Checkpoints download on first use (TRANSFERSHARP_OFFLINE=1: never).")
        .WithExample("predict", "--model", "resnet50", "samples/cat.jpg")
        .WithExample("predict", "--model", "ResNet50", "--weights", "IMAGENET1K_V1", "--top", "3", "a.jpg", "b.png")
        .WithExample("predict", "--model", "resnet50", "--weights", "resnet50-0676ba61.pth", "photo.jpg", "--json");
    config.AddCommand<SummaryCommand>("summary")
        .WithDescription("Show a model's layers, output shapes, parameter counts, MACs, feature node and layer groups.")
        .WithExample("summary", "--model", "resnet50")
        .WithExample("summary", "--model", "ResNet50", "--size", "320", "--json");
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train a classifier on a folder of labelled images: a new head on a pretrained body, or fine-tuning.")
        .WithExample("train", "--model", "resnet50", "--data", "photos/train", "--mode", "head", "--epochs", "20", "--out", "model.safetensors")
        .WithExample("train", "--model", "resnet50", "--data", "photos/train", "--val", "photos/val", "--mode", "finetune", "--epochs", "9", "--unfreeze", "2", "--out", "model.safetensors");
    config.AddCommand<ExtractCommand>("extract")
        .WithDescription("Write pooled features of a model for every image of a data set (.parquet, .npy or .csv); resumable.")
        .WithExample("extract", "--model", "resnet50", "--data", "photos", "--out", "features.parquet");
    config.AddCommand<EvaluateCommand>("evaluate")
        .WithDescription("Accuracy, top-k, per-class precision/recall/F1 and the confusion matrix of a trained model.")
        .WithExample("evaluate", "--model", "model.safetensors", "--data", "photos/test", "--confusion-png", "confusion.png");
    config.AddCommand<DemoCommand>("demo")
        .WithDescription("Offline tour on bundled Fashion-MNIST images: pretrained vs random features, fine-tuning, a saved model, predictions.")
        .WithExample("demo");
});
return await app.RunAsync(args);
