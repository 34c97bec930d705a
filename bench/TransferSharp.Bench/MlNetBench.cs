using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using TransferSharp.ML;

namespace TransferSharp.Bench;

/// <summary>
/// The same ML.NET pipeline with ML.NET's own transfer learning and with ours, on one image folder, same run:
/// ML.NET's DnnImageFeaturizer (ResNet18, with ImageAnalytics' LoadImages/ResizeImages/ExtractPixels) +
/// LbfgsMaximumEntropy; our FeaturizeImage (resnet18_cntk, the same network) + the same trainer; our fine-tuning
/// trainer. Accuracy on the test split and wall time (fit, then scoring the test split).
/// </summary>
public static class MlNetBench
{
    public const string Help = "ML.NET DnnImageFeaturizer(ResNet18)+LbfgsMaximumEntropy vs FeaturizeImage+same vs FineTuneImageClassifier: "
        + "--data DIR (DIR/train/<class>, DIR/test/<class>) | --folder DIR [--classes a,b,c] [--test-every 3] (images anywhere under DIR/<class>; "
        + "the folder " + TuxPaintStamps + " is installed with apt-get when missing); "
        + "[--head-epochs 30] [--epochs 1] (the fine-tuning trainer's defaults) [--threads 2] [--skip-finetune]";

    /// <summary>Debian's package tuxpaint-stamps-default: the second benchmark folder of docs/ml-net.md.</summary>
    private const string TuxPaintStamps = "/usr/share/tuxpaint/stamps";

    public sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public static int Run(string[] args)
    {
        string? data = null, folder = null;
        string[]? classes = null;
        var defaults = new FineTuneImageOptions();
        int testEvery = 3, epochs = defaults.Epochs, headEpochs = defaults.HeadEpochs, threads = 2;
        bool fineTune = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--data": data = args[++i]; break;
                case "--folder": folder = args[++i]; break;
                case "--classes": classes = args[++i].Split(','); break;
                case "--test-every": testEvery = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--epochs": epochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--head-epochs": headEpochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--skip-finetune": fineTune = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        Row[] train, test;
        if (data is not null) (train, test) = (FromFolder(Path.Combine(data, "train"), null), FromFolder(Path.Combine(data, "test"), null));
        else if (folder is not null)
        {
            if (Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) == TuxPaintStamps) EnsureTuxPaintStamps();
            var all = FromFolder(folder, classes);
            train = all.Where((_, i) => i % testEvery != 0).ToArray();
            test = all.Where((_, i) => i % testEvery == 0).ToArray();
        }
        else throw new ArgumentException("give --data DIR or --folder DIR");
        TorchSharp.torch.set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"data: {data ?? folder}: {train.Length} train / {test.Length} test images, {train.Select(r => r.Label).Distinct().Count()} classes; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine();
        Console.WriteLine("| pipeline | test accuracy | fit (s) | score test (s) |");
        Console.WriteLine("|---|---:|---:|---:|");

        var ml = new MLContext(seed: 1);
        var lbfgs = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy();
        // ML.NET's ResizeImages/ExtractPixels call SkiaSharp 2 methods that our SkiaSharp 4 (one per process) changed:
        // the peer gets the pixels ExtractPixels would give (planar RGB, 0–255, 224×224 — the images here are square, so
        // resize-to-fill and resize-and-crop agree) from our decoder, and everything after that is ML.NET's own.
        var pixels = new TransferSharp.Vision.Preprocessing.Preprocessing { ResizeSize = 224, CropSize = 224, PixelScale = 255, Mean = [0, 0, 0], Std = [1, 1, 1] };
        Measure("ML.NET `DnnFeaturizeImage` (ResNet18) + `LbfgsMaximumEntropy`", ml,
            () => train.Select(r => new PixelRow { Pixels = TransferSharp.Vision.Preprocessing.ImageTransforms.Load(r.ImagePath, pixels), Label = r.Label }).ToArray(),
            () => test.Select(r => new PixelRow { Pixels = TransferSharp.Vision.Preprocessing.ImageTransforms.Load(r.ImagePath, pixels), Label = r.Label }).ToArray(),
            ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), nameof(PixelRow.Pixels))
                .AppendCacheCheckpoint(ml)
                .Append(lbfgs));
        Measure("ours: `FeaturizeImage` (resnet18_cntk) + `LbfgsMaximumEntropy`", ml, () => train, () => test,
            ml.Transforms.FeaturizeImage("Features", nameof(Row.ImagePath), "resnet18_cntk").AppendCacheCheckpoint(ml).Append(lbfgs));
        if (fineTune)
            Measure($"ours: `FineTuneImageClassifier` (resnet18_cntk: head {headEpochs} epochs on cached features, then {epochs} fine-tuning with the last group unfrozen)",
                ml, () => train, () => test,
                ml.MulticlassClassification.Trainers.FineTuneImageClassifier(new FineTuneImageOptions { HeadEpochs = headEpochs, Epochs = epochs }));
        return 0;
    }

    public sealed class PixelRow
    {
        [Microsoft.ML.Data.VectorType(3, 224, 224)] public float[] Pixels { get; set; } = [];
        public string Label { get; set; } = "";
    }

    /// <summary>Fit on the train rows, then evaluate on the test rows; making the rows is timed with each phase.</summary>
    private static void Measure<T>(string name, MLContext ml, Func<T[]> train, Func<T[]> test, IEstimator<ITransformer> learner) where T : class
    {
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(learner);
        var sw = Stopwatch.StartNew();
        var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train()));
        using var owned = model as IDisposable; // deletes the ONNX files the pipeline's ONNX Runtime steps read
        double fit = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test())));
        double score = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {metrics.MicroAccuracy:P1} | {fit:F0} | {score:F0} |"));
    }

    /// <summary>Installs Debian's tuxpaint-stamps-default when the folder is missing.</summary>
    private static void EnsureTuxPaintStamps()
    {
        if (Directory.Exists(TuxPaintStamps)) return;
        BenchUtil.EnsureDebianPackages("tuxpaint-stamps-default");
        if (!Directory.Exists(TuxPaintStamps)) throw new InvalidOperationException($"apt-get installed tuxpaint-stamps-default but {TuxPaintStamps} is missing");
    }

    private static Row[] FromFolder(string dir, string[]? classes) =>
        Directory.GetDirectories(dir).Order(StringComparer.Ordinal)
            .Where(d => classes is null || classes.Contains(Path.GetFileName(d)))
            .SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories).Where(f => TransferSharp.Data.ImageDataset.ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal).Select(f => new Row { ImagePath = f, Label = Path.GetFileName(d) }))
            .ToArray();
}
