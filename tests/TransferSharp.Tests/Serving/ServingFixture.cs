using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Data;
using TransferSharp.Serving;
using TransferSharp.Tests.Support;
using TransferSharp.Tests.Training;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Serving;

/// <summary>The serving tests share one trained model.</summary>
[CollectionDefinition("Serving")]
public sealed class ServingCollection : ICollectionFixture<ServingFixture>;

/// <summary>A small trained classifier (resnet18 with random weights at 32×32, a head for three Fashion-MNIST classes,
/// two epochs: seconds to train and milliseconds per image), saved as a model file once for all serving tests.</summary>
public sealed class ServingFixture : IDisposable
{
    public ServingFixture()
    {
        Dir = Paths.NewTempDir();
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(Dir, "data"), 4, "bag", "coat", "sandal"));
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        var trained = source;
        Trainer.Train(source, data, null, new TrainOptions { Epochs = 2, ValidationSplit = 0.25 });
        ModelPath = Path.Combine(Dir, "model.safetensors");
        trained.Save(ModelPath);
    }

    public string Dir { get; }

    /// <summary>The trained model file.</summary>
    public string ModelPath { get; }

    public static string Image(string name) => Path.Combine(Paths.RepoRoot, "samples", name);

    /// <summary>Starts a real Kestrel server on 127.0.0.1 with a free port, serving the model.</summary>
    public async Task<RunningServer> StartAsync(ServingOptions? options = null, string engine = "torchsharp")
    {
        var app = TransferSharpServer.Build(ServedModel.Load(ModelPath, engine: engine), options ?? new ServingOptions(), ["http://127.0.0.1:0"]);
        await app.StartAsync();
        var server = new RunningServer(app);
        await server.Batcher.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        return server;
    }

    public void Dispose() => Directory.Delete(Dir, true);
}

/// <summary>A started server and a client for it.</summary>
public sealed class RunningServer(WebApplication app) : IAsyncDisposable
{
    public WebApplication App { get; } = app;

    public Uri BaseAddress { get; } = new(TransferSharpServer.Addresses(app).Single() + "/");

    public HttpClient Client => _client ??= new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    private HttpClient? _client;

    internal DynamicBatcher Batcher => App.Services.GetRequiredService<DynamicBatcher>();

    public static HttpContent ImageBody(byte[] bytes, string type = "image/jpeg") =>
        new ByteArrayContent(bytes) { Headers = { ContentType = new MediaTypeHeaderValue(type) } };

    public static HttpContent ImageFile(string path) => ImageBody(File.ReadAllBytes(path));

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
