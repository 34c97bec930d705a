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
    config.AddCommand<SummaryCommand>("summary")
        .WithDescription("Show a model's layers, output shapes, parameter counts, MACs, feature node and layer groups.")
        .WithExample("summary", "--model", "resnet50")
        .WithExample("summary", "--model", "ResNet50", "--size", "320", "--json");
});
return await app.RunAsync(args);
