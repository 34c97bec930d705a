using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Weights;

/// <summary>The files of tests/data/weights (made by make_fixtures.py with PyTorch 1.13) and helpers around them.</summary>
internal static class WeightFixtures
{
    public static string Dir => Path.Combine(Paths.TestData, "weights");

    public static string File(string name) => Path.Combine(Dir, name);

    public sealed record TinyDenseNetExpected(long[] InputShape, float[] Input, double[][] Logits, double[][] Features, double[][] LogitsF16, Dictionary<string, long[]> StateDict);

    private static readonly Lazy<TinyDenseNetExpected> _expected = new(() =>
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(File("tiny_densenet_expected.json")));
        var r = doc.RootElement;
        double[][] Matrix(string name) => r.GetProperty(name).EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        return new TinyDenseNetExpected(
            r.GetProperty("input_shape").EnumerateArray().Select(v => v.GetInt64()).ToArray(),
            r.GetProperty("input").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray(),
            Matrix("logits"), Matrix("features"), Matrix("logits_f16_weights"),
            r.GetProperty("state_dict").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetInt64()).ToArray()));
    });

    public static TinyDenseNetExpected Expected => _expected.Value;

    /// <summary>torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=10) as a graph.</summary>
    public static GraphModule TinyDenseNet(int numClasses = 10, int inChannels = 3, string name = "tiny_densenet") =>
        new(DenseNet.Build(name, 4, [2, 2], 8, 2, new ModelOptions { NumClasses = numClasses, InChannels = inChannels, ImageSize = 32 }));

    public static Tensor Input() => tensor(Expected.Input).reshape(Expected.InputShape);

    public static double MaxAbsDiff(Tensor actual, double[][] expected) => Vision.ParityTests.MaxAbsDiff(actual, expected);

    /// <summary>Runs the model in eval mode on the fixture input.</summary>
    public static Tensor Logits(GraphModule model, Tensor? input = null)
    {
        model.eval();
        using var _ = no_grad();
        using var x = input is null ? Input() : null;
        return model.forward(input ?? x!);
    }

    /// <summary>Same shape and dtype and every element equal.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var scope = NewDisposeScope();
        return a.numel() == 0 || a.to(float64).eq(b.to(float64)).all().item<bool>();
    }

    /// <summary>Max |a − b| over two tensors.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a.to(float64) - b.to(float64)).abs().max();
        return d.item<double>();
    }
}
