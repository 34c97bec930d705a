using System.Globalization;
using TransferSharp.Runtime;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Bench;

/// <summary>
/// Dropout drawn from a generator of the run's own (<see cref="SeededDropout"/>, what training uses since it stopped
/// seeding LibTorch's global generator) against LibTorch's fused <c>F.dropout</c> on the global generator, on the
/// activations a classifier's dropout sees; and, for scale, one fine-tuning step of a model with a dropout layer.
/// </summary>
public static class DropoutBench
{
    public const string Help = "seeded dropout vs LibTorch's F.dropout, interleaved, plus a mobilenet_v2 fine-tuning step for scale: [--threads 2] [--rounds 7]";

    public static int Run(string[] args)
    {
        int threads = 2, rounds = 7;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        set_num_threads(threads);
        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"load before: {BenchUtil.LoadAverage()}");
        using var generator = new Generator(7);
        const int calls = 200;
        Console.WriteLine();
        Console.WriteLine("| activations (p) | seeded dropout (µs/call) | F.dropout, global generator (µs/call) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (shape, p) in new (long[] Shape, double P)[] { ([16, 1280], 0.2), ([16, 4096], 0.5), ([64, 512], 0.5) })
        {
            using var x = randn(shape, generator: generator);
            var perSecond = BenchUtil.Interleaved(
            [
                () => { for (int i = 0; i < calls; i++) SeededDropout.Apply(x, p, generator).Dispose(); },
                () => { for (int i = 0; i < calls; i++) F.dropout(x, p, true).Dispose(); },
            ], calls, rounds);
            double ours = 1e6 / perSecond[0], peer = 1e6 / perSecond[1];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| [{string.Join("×", shape)}] ({p}) | {ours:F1} | {peer:F1} | {ours / peer:F2}× |"));
        }

        // For scale: one training step of mobilenet_v2 (its classifier has Dropout(0.2) on [16, 1280]).
        using var model = ModelZoo.Create("mobilenet_v2", new ModelOptions { NumClasses = 10 });
        model.train();
        using var images = randn([16, 3, 224, 224], generator: generator);
        using var labels = randint(10, [16], generator: generator);
        var steps = new List<double>();
        for (int round = 0; round < 4; round++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                F.cross_entropy(model.forward(images), labels).backward();
                model.zero_grad();
            }
            if (round > 0) steps.Add(clock.Elapsed.TotalMilliseconds);
        }
        steps.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"\nmobilenet_v2 fine-tuning step (forward + backward, batch 16, 224²): median {steps[steps.Count / 2]:F0} ms of 3"));
        Console.WriteLine($"load after: {BenchUtil.LoadAverage()}");
        return 0;
    }
}
