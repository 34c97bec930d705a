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
        .WithExample("predict", "--model", "resnet50", "--weights", "resnet50-0676ba61.pth", "photo.jpg", "--json")
        .WithExample("predict", "--model", "model.onnx", "--engine", "onnxruntime", "photo.jpg");
    config.AddCommand<ExportCommand>("export")
        .WithDescription("Write a model (zoo with weights, imported, or trained) as an ONNX file for ONNX Runtime / ML.NET: dynamic batch, preprocessing in its metadata.")
        .WithExample("export", "--model", "resnet18_cntk", "--out", "resnet18_cntk.onnx")
        .WithExample("export", "--model", "resnet50", "--weights", "IMAGENET1K_V2", "--out", "resnet50.onnx", "--opset", "13", "--check");
    config.AddCommand<SummaryCommand>("summary")
        .WithDescription("Show a model's layers, output shapes, parameter counts, MACs, feature node and layer groups.")
        .WithExample("summary", "--model", "resnet50")
        .WithExample("summary", "--model", "ResNet50", "--size", "320", "--json");
});
return await app.RunAsync(args);
