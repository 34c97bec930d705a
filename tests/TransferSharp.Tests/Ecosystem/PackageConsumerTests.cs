using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Ecosystem;

/// <summary>The NuGet packages as a user gets them: packed from this build (no warnings), restored by a fresh app
/// from a local folder — offline, the dependencies coming from the machine's NuGet cache — and run.</summary>
[Trait("Category", "Packages")]
public class PackageConsumerTests
{
    // Every library package of src/: each packs on its own (the CLI is a tool, published rather than referenced).
    private static readonly string[] Packages = ["TransferSharp", "TransferSharp.Models.Cntk", "TransferSharp.Models.MiniLM", "TransferSharp.OnnxRuntime", "TransferSharp.Serving",
        "TransferSharp.ML", "TransferSharp.Extensions.AI"];

    [Fact]
    public void A_fresh_app_restores_the_packed_packages_and_predicts()
    {
        var dir = Paths.NewTempDir();
        try
        {
            var config = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
            // A version of its own: nothing restored by an earlier run (or from elsewhere) can stand in for this build.
            var version = $"0.1.0-consumer.{DateTime.UtcNow:yyyyMMddHHmmss}";
            var feed = Path.Combine(dir, "feed");
            foreach (var package in Packages)
            {
                var project = Path.Combine(Paths.RepoRoot, "src", package, package + ".csproj");
                var (code, stdout, stderr) = Samples.RunProcess("dotnet", ["pack", project, "-c", config, "--no-build", "-o", feed, $"-p:PackageVersion={version}"],
                    Paths.RepoRoot, TimeSpan.FromMinutes(5));
                Assert.True(code == 0, $"pack {package}: exit {code}\n{stdout}\n{stderr}");
                Assert.DoesNotContain("warning", stdout + stderr, StringComparison.OrdinalIgnoreCase);
                Assert.True(File.Exists(Path.Combine(feed, $"{package}.{version}.nupkg")), stdout);
                Assert.True(File.Exists(Path.Combine(feed, $"{package}.{version}.snupkg")), $"{package}: no symbols package");
            }

            var app = Path.Combine(dir, "app");
            Directory.CreateDirectory(app);
            foreach (var file in Directory.GetFiles(Path.Combine(Paths.RepoRoot, "tests", "PackageConsumer")))
                File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
            var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            // Only the local feed as a source; the machine's cache as a read-only fallback; our packages land in the app's folder.
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources><clear /><add key="local" value="{feed}" /></packageSources>
                  <fallbackPackageFolders><clear /><add key="cache" value="{cache}" /></fallbackPackageFolders>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "packages")}" /></config>
                </configuration>
                """);
            // An app that takes only the core package restores without ONNX Runtime and without the CNTK model package
            // (and so without its 45 MB model), nor the MiniLM text encoder: those come with TransferSharp.Models.Cntk /
            // TransferSharp.OnnxRuntime / TransferSharp.Models.MiniLM.
            var core = Path.Combine(dir, "core");
            Directory.CreateDirectory(core);
            File.Copy(Path.Combine(app, "nuget.config"), Path.Combine(core, "nuget.config"));
            File.WriteAllText(Path.Combine(core, "CoreOnly.csproj"), """
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework></PropertyGroup>
                  <ItemGroup><PackageReference Include="TransferSharp" Version="$(TransferSharpVersion)" /></ItemGroup>
                </Project>
                """);
            var restore = Samples.RunProcess("dotnet", ["restore", "-p:TransferSharpVersion=" + version], core, TimeSpan.FromMinutes(3));
            Assert.True(restore.Code == 0, $"core-only restore: exit {restore.Code}\n{restore.Out}\n{restore.Err}");
            var assets = File.ReadAllText(Path.Combine(core, "obj", "project.assets.json"));
            Assert.Contains($"TransferSharp/{version}", assets);
            foreach (var unwanted in new[] { "Microsoft.ML.OnnxRuntime", "Microsoft.ML.DnnImageFeaturizer", "TransferSharp.Models.Cntk", "TransferSharp.OnnxRuntime", "SentenceTransformers", "TransferSharp.Models.MiniLM" })
                Assert.DoesNotContain(unwanted, assets, StringComparison.OrdinalIgnoreCase);
            Assert.InRange(new FileInfo(Path.Combine(feed, $"TransferSharp.{version}.nupkg")).Length, 1, 20_000_000);

            var fashion = Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset");
            var train = Path.Combine(dir, "train");
            foreach (var c in new[] { "bag", "trouser" })
            {
                Directory.CreateDirectory(Path.Combine(train, c));
                foreach (var f in Directory.GetFiles(Path.Combine(fashion, "train", c)).Order(StringComparer.Ordinal).Take(5))
                    File.Copy(f, Path.Combine(train, c, Path.GetFileName(f)));
            }
            var query = Directory.GetFiles(Path.Combine(fashion, "test", "trouser")).Order(StringComparer.Ordinal).First();
            var run = Samples.RunProcess("dotnet", ["run", "-p:TransferSharpVersion=" + version, "--", train, query], app, TimeSpan.FromMinutes(8));
            Assert.True(run.Code == 0, $"exit {run.Code}\n{run.Out}\n{run.Err}");
            Assert.Contains("predicted: trouser", run.Out);
            Assert.Contains("embedding: 0.5 0.5", run.Out);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
