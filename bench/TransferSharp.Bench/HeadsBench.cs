using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TransferSharp.Training;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>
/// Head fitters on the same cached features (files written by <c>transfer extract</c>): the L-BFGS logistic
/// regression (the default), mini-batch epochs (the former default, and run until validation stops improving), and
/// scikit-learn's LogisticRegression / LogisticRegressionCV as the peer (bench/peers/heads_sklearn.py).
/// Two protocols: "val=test" picks λ / the epoch on the evaluation set itself (the issue's setting, optimistic);
/// "split" picks them on a stratified 20 % of the training file and scores the evaluation set untouched.
/// </summary>
public static class HeadsBench
{
    public const string Help = "head fitters vs scikit-learn on extracted features: --train A.npy --test B.npy [--model resnet18_cntk] [--threads 2] [--no-peer]";

    public static int Run(string[] args)
    {
        string? trainPath = null, testPath = null, model = "resnet18_cntk";
        int threads = 2;
        bool peer = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--train": trainPath = args[++i]; break;
                case "--test": testPath = args[++i]; break;
                case "--model": model = args[++i]; break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (trainPath is null || testPath is null) throw new ArgumentException("--train and --test (.npy from `transfer extract`) are required");
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}; load before: {File.ReadAllText("/proc/loadavg").Trim()}");
        var train = ReadNpy(trainPath);
        var test = ReadNpy(testPath);
        Console.WriteLine($"{model}: {train.Count} training and {test.Count} evaluation feature vectors of {train.Dimension}, {train.ClassNames.Count} classes");
        var (fit, held) = Split(train, 0.2);

        var arms = new (string Name, TrainOptions Options)[]
        {
            ("lbfgs (default)", new TrainOptions()),
            ("epochs: 10 at 1e-3 (old default)", new TrainOptions { HeadSolver = HeadSolver.Epochs, BatchSize = 64 }),
            ("epochs: ≤300, patience 20", new TrainOptions { HeadSolver = HeadSolver.Epochs, BatchSize = 64, Epochs = 300, Patience = 20 }),
        };
        Console.WriteLine();
        Console.WriteLine("| fitter | protocol | accuracy on test | test loss | seconds | chosen |");
        Console.WriteLine("|---|---|---:|---:|---:|---|");
        foreach (var (name, options) in arms)
        {
            foreach (var (protocol, trainSet, valSet) in new[] { ("val=test", train, test), ("split", fit, held) })
            {
                using var trained = VisionModel.Load(model, "imagenet"); // training changes the model: each arm starts afresh
                var clock = Stopwatch.StartNew();
                var record = Trainer.TrainHead(trained, trainSet, valSet, options);
                double seconds = clock.Elapsed.TotalSeconds;
                var (accuracy, loss) = Score(trained, test);
                string chosen = record.HeadFit is { } h ? $"λ {h.L2:G2}" : $"epoch {record.BestEpoch} of {record.History.Count}";
                Console.WriteLine($"| {name} | {protocol} (train {trainSet.Count}) | {accuracy:P1} | {loss:F3} | {seconds:F2} | {chosen} |");
            }
        }
        if (peer)
        {
            BenchUtil.EnsureDebianPackages("python3-sklearn");
            var script = Path.Combine(AppContext.BaseDirectory, "peers", "heads_sklearn.py");
            var json = JsonSerializer.Serialize(new { train = Path.GetFullPath(trainPath), test = Path.GetFullPath(testPath), threads });
            var result = JsonDocument.Parse(BenchUtil.RunPeer("/usr/bin/python3", [script, json])).RootElement;
            foreach (var row in result.GetProperty("rows").EnumerateArray())
                Console.WriteLine($"| scikit-learn {result.GetProperty("sklearn").GetString()} {row.GetProperty("name").GetString()} | all {train.Count} | "
                    + $"{row.GetProperty("accuracy").GetDouble():P1} | {row.GetProperty("loss").GetDouble():F3} | {row.GetProperty("seconds").GetDouble():F2} | C {row.GetProperty("C").GetDouble():G2} |");
        }
        Console.WriteLine($"\nload after: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    /// <summary>Accuracy and cross-entropy of a trained model's head on feature vectors.</summary>
    private static (double Accuracy, double Loss) Score(VisionModel model, FeatureSet set)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var sd = model.Module.state_dict();
        var classifier = model.Module.Graph.ClassifierNode!;
        var logits = set.ToTensor().mm(sd[classifier + ".weight"].flatten(1).t()) + sd[classifier + ".bias"];
        var y = set.LabelTensor();
        return (logits.argmax(1).eq(y).to_type(ScalarType.Float32).mean().item<float>(), nn.functional.cross_entropy(logits, y).item<float>());
    }

    /// <summary>A stratified, seeded split of feature rows (every fifth sample of each class held out).</summary>
    private static (FeatureSet Fit, FeatureSet Held) Split(FeatureSet set, double fraction)
    {
        var held = new List<int>();
        var fit = new List<int>();
        int every = (int)Math.Round(1 / fraction);
        foreach (var group in Enumerable.Range(0, set.Count).GroupBy(i => set.Labels[i]))
            foreach (var (i, n) in group.Select((i, n) => (i, n))) (n % every == every - 1 ? held : fit).Add(i);
        FeatureSet Take(List<int> rows) => new(rows.SelectMany(r => set.Values.AsSpan(r * set.Dimension, set.Dimension).ToArray()).ToArray(), set.Dimension,
            rows.Select(r => set.Labels[r]).ToArray(), rows.Select(r => set.Sources[r]).ToArray(), set.ClassNames);
        return (Take(fit), Take(held));
    }

    /// <summary>Reads `transfer extract`'s .npy (little-endian float32 [N, F], format 1.0) and its index CSV.</summary>
    private static FeatureSet ReadNpy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        var shape = header[(header.IndexOf("'shape': (", StringComparison.Ordinal) + 10)..];
        var dims = shape[..shape.IndexOf(')')].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var values = new float[dims[0] * dims[1]];
        Buffer.BlockCopy(bytes, 10 + headerLength, values, 0, values.Length * 4);
        var rows = File.ReadAllLines(FeatureFiles.NpyIndexPath(path)).Skip(1).Select(l => l.Split(',')).ToArray();
        var classes = rows.Select(r => (Name: r[^2], Index: int.Parse(r[^1], CultureInfo.InvariantCulture))).Distinct().OrderBy(c => c.Index).Select(c => c.Name).ToArray();
        return new FeatureSet(values, dims[1], rows.Select(r => int.Parse(r[^1], CultureInfo.InvariantCulture)).ToArray(), rows.Select(r => r[0]).ToArray(), classes);
    }
}
