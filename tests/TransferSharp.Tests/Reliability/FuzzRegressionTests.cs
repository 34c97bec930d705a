using TransferSharp.Fuzz;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Reliability;

/// <summary>Every input the fuzzer (fuzz/run.sh) found, minimised, under tests/data/fuzz/TARGET/: replayed through the
/// same target code, each must end in the typed error naming the file (or load), quickly.</summary>
[Trait("Category", "Reliability")]
public sealed class FuzzRegressionTests
{
    public static TheoryData<string, string> Findings()
    {
        var data = new TheoryData<string, string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(Paths.TestData, "fuzz")).Order(StringComparer.Ordinal))
            foreach (var file in Directory.GetFiles(dir).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
                data.Add(Path.GetFileName(dir), Path.GetFileName(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(Findings))]
    public void A_fuzz_finding_stays_fixed(string target, string file)
    {
        Assert.Contains(target, FuzzTargets.All.Keys);
        var dir = Paths.NewTempDir();
        try
        {
            var input = File.ReadAllBytes(Path.Combine(Paths.TestData, "fuzz", target, file));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            FuzzTargets.Run(target, input, Path.Combine(dir, "input" + FuzzTargets.All[target].Extension));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
