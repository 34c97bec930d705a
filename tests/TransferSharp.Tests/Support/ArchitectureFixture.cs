using System.Text.Json;

namespace TransferSharp.Tests.Support;

/// <summary>One ../shared/reference/architectures/*.json file.</summary>
public sealed class ArchitectureFixture
{
    public required string File { get; init; }
    public required string Model { get; init; }
    public required ulong WeightSeed { get; init; }
    public required ulong InputSeed { get; init; }
    public required long[] InputShape { get; init; }
    public required double[][] Logits { get; init; }
    public required double[][] Features { get; init; }
    public required double ErrLogits { get; init; }
    public required double ErrFeatures { get; init; }
    public required double MaxAbsLogits { get; init; }
    public required double MaxAbsFeatures { get; init; }
    public required (string Name, long[] Shape, string DType)[] StateDict { get; init; }

    /// <summary>Classifier outputs of the reference model: the fixture's <c>num_classes</c> (0 for a model without a
    /// classifier, whose logits are its features: timm's DINOv2), else the width of its logits (older fixtures).</summary>
    public required int NumClasses { get; init; }

    /// <summary>FILL.md's tolerance: max(50 × float32 error, 1e-5 × max |value|).</summary>
    public double ToleranceLogits => Math.Max(50 * ErrLogits, 1e-5 * MaxAbsLogits);

    public double ToleranceFeatures => Math.Max(50 * ErrFeatures, 1e-5 * MaxAbsFeatures);

    public static ArchitectureFixture Load(string path)
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(path));
        var r = doc.RootElement;
        double[][] Matrix(string name) => r.GetProperty(name).EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        return new ArchitectureFixture
        {
            File = Path.GetFileName(path),
            Model = r.GetProperty("model").GetString()!,
            WeightSeed = r.GetProperty("weight_seed").GetUInt64(),
            InputSeed = r.GetProperty("input_seed").GetUInt64(),
            InputShape = r.GetProperty("input_shape").EnumerateArray().Select(v => v.GetInt64()).ToArray(),
            Logits = Matrix("logits"),
            NumClasses = r.TryGetProperty("num_classes", out var classes) ? classes.GetInt32() : r.GetProperty("logits")[0].GetArrayLength(),
            Features = Matrix("features"),
            ErrLogits = r.GetProperty("float32_max_abs_err_logits").GetDouble(),
            ErrFeatures = r.GetProperty("float32_max_abs_err_features").GetDouble(),
            MaxAbsLogits = r.GetProperty("logits_max_abs").GetDouble(),
            MaxAbsFeatures = r.GetProperty("features_max_abs").GetDouble(),
            StateDict = r.GetProperty("state_dict").EnumerateArray().Select(e =>
                (e[0].GetString()!, e[1].EnumerateArray().Select(v => v.GetInt64()).ToArray(), e[2].GetString()!)).ToArray(),
        };
    }

    /// <summary>Fixture files in the configured directory, by file name.</summary>
    public static IEnumerable<string> Files() =>
        Directory.Exists(Paths.ArchitectureFixtures)
            ? Directory.GetFiles(Paths.ArchitectureFixtures, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal)!
            : [];

    /// <summary>Every fixture file, as theory data (a theory over a missing folder fails: no data).</summary>
    public static Xunit.TheoryData<string> All()
    {
        var data = new Xunit.TheoryData<string>();
        foreach (var f in Files()) data.Add(f);
        return data;
    }
}
