namespace TransferSharp.Weights;

/// <summary>Where downloaded checkpoints live, and whether the network may be used.</summary>
public static class WeightCache
{
    /// <summary>$TRANSFERSHARP_HOME, else ~/.cache/transfersharp.</summary>
    public static string DefaultRoot =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_HOME") is { Length: > 0 } home ? Path.GetFullPath(home)
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "transfersharp");

    /// <summary>True when TRANSFERSHARP_OFFLINE is 1/true/yes: never touch the network.</summary>
    public static bool OfflineFromEnvironment =>
        Environment.GetEnvironmentVariable("TRANSFERSHARP_OFFLINE") is { } v && v.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";
}
