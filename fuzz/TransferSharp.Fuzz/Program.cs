using SharpFuzz;
using SkiaSharp;
using TransferSharp.Fuzz;
using TransferSharp.Onnx;
using TransferSharp.Text;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using static TorchSharp.torch;

// transfer-fuzz TARGET              run under afl-fuzz (SharpFuzz fork server); without afl-fuzz: one input from stdin
// transfer-fuzz seeds DIR           write the seed corpus of every target into DIR/TARGET/, from the test fixtures
// transfer-fuzz replay TARGET FILE… run inputs once each and say what happened (for findings and minimised cases)
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: TransferSharp.Fuzz TARGET | seeds DIR | replay TARGET FILE...\ntargets: " + string.Join(", ", FuzzTargets.All.Keys));
    return 2;
}

var work = Path.Combine(Path.GetTempPath(), $"transfersharp-fuzz-{Environment.ProcessId}");
Directory.CreateDirectory(work);
Seeds.WriteImage(Path.Combine(work, "a.png"), 8, 8, SKEncodedImageFormat.Png); // what seed manifests name

if (args[0] == "seeds")
{
    Seeds.WriteAll(args[1], Seeds.FindRepoRoot());
    return 0;
}
if (args[0] == "replay")
{
    int findings = 0;
    foreach (var file in args.Skip(2))
    {
        try
        {
            FuzzTargets.Run(args[1], File.ReadAllBytes(file), Path.Combine(work, "input" + FuzzTargets.All[args[1]].Extension));
            Console.WriteLine($"{file}: ok");
        }
        catch (FuzzFindingException e)
        {
            findings++;
            Console.WriteLine($"{file}: FINDING {e.Message}\n{e.InnerException}");
        }
    }
    return findings == 0 ? 0 : 1;
}

var target = args[0];
if (!FuzzTargets.All.TryGetValue(target, out var spec))
{
    Console.Error.WriteLine($"unknown target '{target}'; targets: {string.Join(", ", FuzzTargets.All.Keys)}");
    return 2;
}
var input = Path.Combine(work, "input" + spec.Extension);
Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    FuzzTargets.Run(target, ms.ToArray(), input);
});
return 0;

/// <summary>Seed inputs: small valid files of every format, copied from the test fixtures or made here.</summary>
internal static class Seeds
{
    public static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TransferSharp.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("run from the repository's fuzz/ build output");
    }

    public static void WriteImage(string path, int width, int height, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(200, 30, 90));
            using var paint = new SKPaint { Color = new SKColor(10, 220, 40, 180) };
            canvas.DrawCircle(width / 2f, height / 2f, width / 3f, paint);
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, 80);
        File.WriteAllBytes(path, data.ToArray());
    }

    public static void WriteAll(string root, string repo)
    {
        string Dir(string target) => Directory.CreateDirectory(Path.Combine(root, target)).FullName;
        void Copy(string target, string file) => File.Copy(file, Path.Combine(Dir(target), Path.GetFileName(file)), overwrite: true);
        var weights = Path.Combine(repo, "tests", "data", "weights");
        var embeddings = Path.Combine(repo, "..", "shared", "reference", "embeddings");
        if (Environment.GetEnvironmentVariable("TRANSFERSHARP_EMBEDDINGS_DIR") is { Length: > 0 } e) embeddings = e;

        Copy("safetensors", Path.Combine(weights, "tiny_densenet_f16.safetensors"));
        foreach (var f in new[] { "views.pth", "views_legacy.pth", "hostile_posix_system.pth", "tiny_densenet_legacy.pth" }) Copy("pytorch", Path.Combine(weights, f));
        using (var a = arange(6, ScalarType.Float32).reshape(2, 3))
        using (var b = tensor(new long[] { 7, -1 }))
            SafeTensors.Write(Path.Combine(Dir("safetensors"), "small.safetensors"), [new("a", a), new("b", b)], new Dictionary<string, string> { ["format"] = "pt" });

        // A tiny body (conv, ReLU) with the trained head (pool, linear) added: saved as a model file, exported as ONNX,
        // described as GraphJson.
        var g = new GraphBuilder("tiny", 3, 8, 8);
        var x = g.Relu(g.Conv(g.Input, "conv", 4, new Size2(3, 3), new Size2(1, 1), 1));
        g.Features(x);
        var graph = g.Build(x);
        File.WriteAllText(Path.Combine(Dir("graphjson"), "tiny.json"), GraphJson.Serialize(graph));
        var arch = new ModelArchitecture { Zoo = "onnx:tiny", Graph = graph, InChannels = 3, NumClasses = 2 };
        {
            var pre = TransferSharp.Vision.Preprocessing.Preprocessing.ImageNet with { ResizeSize = 8, CropSize = 8 };
            using var trained = new TransferSharp.Vision.VisionModel(arch.Build(), pre, ["cat", "dog"], "tiny", architecture: arch);
            trained.Save(Path.Combine(Dir("model"), "tiny.safetensors"));
            OnnxExporter.Export(trained.Module, Path.Combine(Dir("onnx"), "tiny.onnx"));
        }

        // Word vectors: six words of the GloVe fixture in every text and binary layout, and the cache.
        using (var vectors = WordVectors.Load(Path.Combine(embeddings, "glove.txt"), new WordVectorsLoadOptions { Limit = 6 }))
        {
            vectors.Save(Path.Combine(Dir("word2vec-binary"), "six.bin"), VectorFileFormat.Word2VecBinary);
            vectors.Save(Path.Combine(Dir("word2vec-text"), "six.txt"), VectorFileFormat.Word2VecText);
            vectors.Save(Path.Combine(Dir("glove"), "six.txt"), VectorFileFormat.GloVe);
            TransferSharp.Text.Formats.VectorCache.Write(vectors, Path.Combine(Dir("vector-cache"), "six.tswv"), null, default);
        }
        // The quantized classifier (64 KB); the dense fixtures are megabytes, over AFL's 1 MB input limit.
        Copy("fasttext", Path.Combine(embeddings, "sup.ftz"));

        WriteImage(Path.Combine(Dir("image"), "small.png"), 8, 8, SKEncodedImageFormat.Png);
        WriteImage(Path.Combine(Dir("image"), "small.jpg"), 8, 8, SKEncodedImageFormat.Jpeg);
        WriteImage(Path.Combine(Dir("image"), "small.webp"), 8, 8, SKEncodedImageFormat.Webp);
        Copy("image", Path.Combine(repo, "tests", "data", "preprocessing", "cat_exif6.jpg"));
        Copy("image", Path.Combine(repo, "tests", "data", "preprocessing", "cat_small.gif"));

        File.WriteAllText(Path.Combine(Dir("image-manifest"), "two.csv"), "path,label\na.png,cat\n\"a.png\",\"dog, big\"\n");
        File.WriteAllText(Path.Combine(Dir("image-manifest"), "two.tsv"), "a.png\tcat\na.png\tdog\n");
        File.WriteAllText(Path.Combine(Dir("text-data"), "three.tsv"), "the computer is down\tit\n\"a \"\"quoted\"\" text\"\thumour\n");
        File.WriteAllText(Path.Combine(Dir("text-data"), "three.txt"), "__label__it the computer is down\n__label__humour __label__it a joke\n");

        // Small BERT vocabularies (the five special tokens, words, ## pieces, a CJK ideograph) as vocab.txt and as a
        // Hugging Face tokenizer.json; the fuzzer grows them from there.
        string[] vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "caf", "##e", "na", "##ive", "tab", "end", "x", "你", "second", "text"];
        File.WriteAllText(Path.Combine(Dir("bert-vocab"), "vocab.txt"), string.Join('\n', vocab) + "\n");
        File.WriteAllText(Path.Combine(Dir("tokenizer-json"), "tokenizer.json"),
            "{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
            + "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"truncation\":{\"max_length\":8},\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
            + "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,\"vocab\":{"
            + string.Join(',', vocab.Select((t, i) => $"\"{t}\":{i}")) + "}}}");
    }
}
