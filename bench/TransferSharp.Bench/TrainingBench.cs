using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Vision.Inference;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// The workflows' speed: (1) feature extraction end to end (JPEG decode + resize + crop + forward, decoding
/// overlapped on background threads) against the model alone on preprocessed batches of the same size;
/// (2) a fine-tuning step (train mode, cross-entropy, backward, AdamW) against PyTorch's, with peak memory.
/// </summary>
public static class TrainingBench
{
    public static int Run(string[] args)
    {
        string model = "resnet50";
        int batch = 16, threads = 2, images = 96, steps = 6;
        bool peer = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--images": images = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, LibTorch {__version__}, {get_num_threads()} threads, model {model}, batch {batch}");

        // Fine-tuning first, so this process's peak memory (VmHWM) is the training step's.
        double oursStep = FineTuneImagesPerSecond(model, batch, steps);
        double oursPeak = BenchUtil.PeakRssMb();
        double torchStep = double.NaN, torchPeak = double.NaN;
        string torchVersion = "–";
        if (peer)
        {
            BenchUtil.EnsureDebianPackages(BenchUtil.TorchPeerPackages);
            var script = Path.Combine(AppContext.BaseDirectory, "peers", "training_torch.py");
            var json = JsonSerializer.Serialize(new { model, batch, threads, steps });
            var result = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, json])).RootElement;
            torchStep = result.GetProperty("images_per_second").GetDouble();
            torchPeak = result.GetProperty("peak_rss_mb").GetDouble();
            torchVersion = result.GetProperty("torch").GetString()!;
        }

        var (modelOnly, endToEnd, decodeOnly) = Extraction(model, batch, images);
        var (headSeconds, headEpochs, headDim, headAccuracy) = HeadOnCachedFeatures(model);

        Console.WriteLine();
        Console.WriteLine("| measurement | ours | peer | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| fine-tuning step, {model}, batch {batch}, train mode, AdamW (images/s) | {oursStep:F2} | PyTorch {torchVersion}: {F(torchStep, "F2")} | {F(oursStep / torchStep, "F2")}× |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| peak resident memory of that run (MB) | {oursPeak:F0} | {F(torchPeak, "F0")} | {F(oursPeak / torchPeak, "F2")}× |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| feature extraction end to end, {images} JPEGs 500×375 → 224² (images/s) | {endToEnd:F1} | model only on ready batches: {modelOnly:F1} | {endToEnd / modelOnly * 100:F0}% |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| (decode + resize + crop alone, all cores, images/s) | {decodeOnly:F1} | | |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| softmax-regression head on cached features, 10,000 × {headDim} (+2,000 validation), {headEpochs} epochs, batch 64 (seconds) | {headSeconds:F1} | | val acc {headAccuracy:P1} |"));
        return 0;
    }

    private static string F(double v, string format) => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);

    private static double FineTuneImagesPerSecond(string model, int batch, int steps)
    {
        using var source = VisionModel.Load(model, "none", new ModelOptions { NumClasses = 10 });
        var net = source.Module;
        net.Unfreeze();
        net.train();
        var groups = new[] { new ParamGroup("all", net.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToArray(), 1e-4) };
        using var optimizer = new Optimizer(OptimizerKind.AdamW, groups, 1e-4, 0.9);
        using var x = randn(batch, 3, 224, 224);
        using var y = randint(0, 10, [batch], dtype: ScalarType.Int64);
        void Step()
        {
            using var scope = NewDisposeScope();
            var loss = nn.functional.cross_entropy(net.forward(x), y);
            loss.backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        double seconds = BenchUtil.MedianSeconds(Step, warmup: 2, repeats: steps);
        return batch / seconds;
    }

    /// <summary>Head training alone on synthetic features of the model's width (10 Gaussian classes), through the real Trainer.TrainHead path.</summary>
    private static (double Seconds, int Epochs, int Dimension, double Accuracy) HeadOnCachedFeatures(string model)
    {
        using var source = VisionModel.Load(model, "none");
        int dim = source.Module.Graph.PreLogitsSize, classes = 10;
        var random = new Random(3);
        var centres = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, dim).Select(_ => (float)(random.NextDouble() * 0.2)).ToArray()).ToArray();
        FeatureSet Make(int n)
        {
            var values = new float[n * dim];
            var labels = new int[n];
            for (int i = 0; i < n; i++)
            {
                labels[i] = i % classes;
                for (int j = 0; j < dim; j++) values[i * dim + j] = centres[labels[i]][j] + (float)(random.NextDouble() - 0.5);
            }
            return new FeatureSet(values, dim, labels, labels.Select(l => $"#{l}").ToArray(), Enumerable.Range(0, classes).Select(c => $"c{c}").ToArray());
        }
        var train = Make(10_000);
        var val = Make(2_000);
        var options = new TrainOptions { Mode = TrainMode.Head, HeadSolver = HeadSolver.Epochs, Epochs = 30, BatchSize = 64 };
        var clock = Stopwatch.StartNew();
        var record = Trainer.TrainHead(source, train, val, options);
        return (clock.Elapsed.TotalSeconds, options.Epochs, dim, record.BestValidationAccuracy ?? double.NaN);
    }

    private static (double ModelOnly, double EndToEnd, double DecodeOnly) Extraction(string model, int batch, int images)
    {
        var dir = Path.Combine(Path.GetTempPath(), "transfersharp-bench-jpegs");
        MakeJpegs(dir, images);
        var data = ImageDataset.FromFolder(dir);
        using var source = VisionModel.Load(model, "none");
        var options = new ExtractOptions { Loader = new LoaderOptions { BatchSize = batch } };

        using var predictor = new Predictor(source.Module, source.Preprocessing, null, new PredictorOptions { BatchSize = batch });
        using var x = randn(batch, 3, source.Preprocessing.CropSize, source.Preprocessing.CropSize);
        double perBatch = BenchUtil.MedianSeconds(() => predictor.Features(x).Dispose(), warmup: 2, repeats: 5);
        double modelOnly = batch / perBatch;

        var transform = new SampleTransform(source.Preprocessing);
        var decode = Stopwatch.StartNew();
        foreach (var b in DataLoader.Batches(data, Enumerable.Range(0, data.Count).ToArray(), transform, options.Loader)) b.Dispose();
        double decodeOnly = data.Count / decode.Elapsed.TotalSeconds;

        FeatureExtractor.Extract(source, data.Subset(Enumerable.Range(0, batch).ToArray()), options); // warm-up
        var clock = Stopwatch.StartNew();
        var set = FeatureExtractor.Extract(source, data, options);
        double endToEnd = set.Count / clock.Elapsed.TotalSeconds;
        return (modelOnly, endToEnd, decodeOnly);
    }

    /// <summary>Photo-like JPEGs (gradients, shapes and noise, quality 90) in two class folders; made once, reused.</summary>
    private static void MakeJpegs(string dir, int count)
    {
        if (Directory.Exists(dir) && Directory.GetFiles(dir, "*.jpg", SearchOption.AllDirectories).Length == count) return;
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        var random = new Random(42);
        for (int i = 0; i < count; i++)
        {
            var folder = Path.Combine(dir, i % 2 == 0 ? "a" : "b");
            Directory.CreateDirectory(folder);
            using var bitmap = new SKBitmap(500, 375);
            using (var canvas = new SKCanvas(bitmap))
            {
                using var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(500, 375),
                    [new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)), new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256))],
                    SKShaderTileMode.Clamp);
                using var fill = new SKPaint { Shader = shader };
                canvas.DrawRect(0, 0, 500, 375, fill);
                using var paint = new SKPaint { IsAntialias = true };
                for (int s = 0; s < 30; s++)
                {
                    paint.Color = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256), 160);
                    canvas.DrawCircle(random.Next(500), random.Next(375), random.Next(5, 80), paint);
                }
            }
            var pixels = bitmap.Pixels;
            for (int p = 0; p < pixels.Length; p++)
            {
                int n = random.Next(-12, 13);
                var c = pixels[p];
                pixels[p] = new SKColor((byte)Math.Clamp(c.Red + n, 0, 255), (byte)Math.Clamp(c.Green + n, 0, 255), (byte)Math.Clamp(c.Blue + n, 0, 255));
            }
            bitmap.Pixels = pixels;
            using var image = SKImage.FromBitmap(bitmap);
            using var jpeg = image.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(folder, $"{i:D4}.jpg"), jpeg.ToArray());
        }
    }
}
