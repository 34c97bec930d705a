// Image search by example through Microsoft.Extensions.AI: embed a folder of labelled images with an
// IEmbeddingGenerator<DataContent, Embedding<float>> from DI, then rank them by cosine similarity to a query image.
using System.Numerics.Tensors;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Extensions.AI;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ImageSearch FOLDER QUERY_IMAGE [--top 5] [--model resnet18_cntk]   (FOLDER/<label>/<image>)");
    return 2;
}
TransferSharp.Onnx.OnnxZoo.Register(); // resnet18_cntk, the offline default (package TransferSharp.Models.Cntk)
string Option(string name, string fallback) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;

var services = new ServiceCollection();
services.AddImageEmbeddingGenerator(Option("--model", "resnet18_cntk"), options: new ImageEmbeddingOptions { Normalize = true });
using var provider = services.BuildServiceProvider();
var generator = provider.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();

static DataContent Image(string path) =>
    new(File.ReadAllBytes(path), Path.GetExtension(path).ToLowerInvariant() switch { ".png" => "image/png", ".bmp" => "image/bmp", ".gif" => "image/gif", ".webp" => "image/webp", _ => "image/jpeg" }) { Name = path };

var files = Directory.GetDirectories(args[0]).Order(StringComparer.Ordinal)
    .SelectMany(d => Directory.GetFiles(d).Order(StringComparer.Ordinal)).ToArray();
var index = await generator.GenerateAsync(files.Select(Image));
var query = (await generator.GenerateAsync([Image(args[1])]))[0];
var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
Console.WriteLine($"{files.Length} images embedded with {metadata.DefaultModelId} ({metadata.DefaultModelDimensions} dimensions); nearest to {args[1]}:");
foreach (var (file, score) in files.Zip(index, (f, e) => (f, TensorPrimitives.Dot(query.Vector.Span, e.Vector.Span)))
             .OrderByDescending(x => x.Item2).Take(int.Parse(Option("--top", "5"))))
    Console.WriteLine($"{score:F3}  {Path.GetFileName(Path.GetDirectoryName(file))}  {file}");
return 0;
