namespace TransferSharp.Tests.Support;

/// <summary>Where the shared reference material lives: ../shared beside the repository, or the
/// directory an environment variable names.</summary>
public static class Paths
{
    /// <summary>The repository root (the folder holding TransferSharp.slnx).</summary>
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TransferSharp.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (TransferSharp.slnx) above " + AppContext.BaseDirectory);
    }

    /// <summary>../shared next to the repository.</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    /// <summary>Architecture parity fixtures: $TRANSFERSHARP_REFERENCE_DIR or ../shared/reference/architectures.</summary>
    public static string ArchitectureFixtures =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_REFERENCE_DIR") is { Length: > 0 } d ? d
        : Path.Combine(Shared, "reference", "architectures");

    /// <summary>Embedding fixtures: $TRANSFERSHARP_EMBEDDINGS_DIR or ../shared/reference/embeddings.</summary>
    public static string EmbeddingFixtures =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_EMBEDDINGS_DIR") is { Length: > 0 } d ? d
        : Path.Combine(Shared, "reference", "embeddings");

    /// <summary>Test data shipped with the repository (tests/data).</summary>
    public static string TestData => Path.Combine(RepoRoot, "tests", "data");

    /// <summary>Fails the test (never skips it) when a fixture file it needs is missing: a missing fixture must show as a
    /// red test, not as a quiet skip that hides the check.</summary>
    public static void RequireFixture(string path, string what = "fixture")
    {
        if (!File.Exists(path))
            Xunit.Assert.Fail($"{what} missing: {path} (set TRANSFERSHARP_REFERENCE_DIR / TRANSFERSHARP_EMBEDDINGS_DIR to a fixture directory of the same shape)");
    }

    /// <summary>A fresh temporary directory, deleted by the caller.</summary>
    public static string NewTempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "transfersharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
