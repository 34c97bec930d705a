using System.Text;

namespace TransferSharp.Vision.Graph;

/// <summary>A tensor whose shape differs between model and checkpoint.</summary>
/// <param name="Key">State-dict name (the model's).</param>
/// <param name="ModelShape">Shape in the model.</param>
/// <param name="CheckpointShape">Shape in the source (the checkpoint, file or module loaded from).</param>
public sealed record ShapeMismatch(string Key, long[] ModelShape, long[] CheckpointShape)
{
    /// <inheritdoc />
    public override string ToString() => $"{Key} (model [{string.Join(", ", ModelShape)}], checkpoint [{string.Join(", ", CheckpointShape)}])";
}

/// <summary>What loading named tensors into a model did, key by key.</summary>
public sealed record LoadReport
{
    /// <summary>The model's name.</summary>
    public required string Model { get; init; }

    /// <summary>The policy it was loaded under.</summary>
    public LoadPolicy Policy { get; init; }

    /// <summary>Model keys that received checkpoint values.</summary>
    public IReadOnlyList<string> Loaded { get; init; } = [];

    /// <summary>Model keys the checkpoint lacks (skipped under lenient loading, an error otherwise).</summary>
    public IReadOnlyList<string> Missing { get; init; } = [];

    /// <summary>Checkpoint keys the model lacks (skipped under lenient loading, an error otherwise).</summary>
    public IReadOnlyList<string> Unexpected { get; init; } = [];

    /// <summary>Keys present in both with different shapes (skipped under lenient loading, an error otherwise).</summary>
    public IReadOnlyList<ShapeMismatch> MisShaped { get; init; } = [];

    /// <summary>Head keys left as initialised on purpose: the classifier has another number of
    /// classes than the checkpoint's, or the checkpoint has no auxiliary head.</summary>
    public IReadOnlyList<string> Reinitialised { get; init; } = [];

    /// <summary>First-convolution weights adapted to the model's number of input channels (timm's rule:
    /// 1 channel sums RGB; N channels repeat RGB and scale by 3/N).</summary>
    public IReadOnlyList<string> Adapted { get; init; } = [];

    /// <summary>Checkpoint head keys not used because the model has no such head (built without a
    /// classifier or without the auxiliary branch).</summary>
    public IReadOnlyList<string> Dropped { get; init; } = [];

    /// <summary>Checkpoint keys renamed to the model's names (DataParallel prefix, legacy DenseNet names, timm VGG head).</summary>
    public IReadOnlyList<(string From, string To)> Renamed { get; init; } = [];

    /// <summary>True when every model key was loaded or deliberately handled, and no checkpoint key was left over.</summary>
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && MisShaped.Count == 0;

    /// <summary>True when the classifier was loaded from the checkpoint (so the checkpoint's labels apply).</summary>
    public bool HeadLoaded { get; init; }

    /// <summary>The missing, unexpected and mis-shaped keys, by name.</summary>
    public string DescribeProblems()
    {
        var parts = new List<string>();
        if (Missing.Count > 0) parts.Add($"{Missing.Count} missing key(s): {List(Missing)}");
        if (Unexpected.Count > 0) parts.Add($"{Unexpected.Count} unexpected key(s): {List(Unexpected)}");
        if (MisShaped.Count > 0) parts.Add($"{MisShaped.Count} mis-shaped key(s): {List(MisShaped.Select(m => m.ToString()).ToList())}");
        return parts.Count == 0 ? "no problems" : string.Join("; ", parts);
    }

    private static string List(IReadOnlyList<string> keys, int max = 12) =>
        string.Join(", ", keys.Take(max)) + (keys.Count > max ? $" (+{keys.Count - max} more)" : "");

    /// <inheritdoc />
    public override string ToString()
    {
        var sb = new StringBuilder($"{Model}: loaded {Loaded.Count} tensors");
        if (Adapted.Count > 0) sb.Append($"; adapted to the input channels: {List(Adapted)}");
        if (Reinitialised.Count > 0) sb.Append($"; left initialised (new head): {List(Reinitialised)}");
        if (Dropped.Count > 0) sb.Append($"; not used (model has no such head): {List(Dropped)}");
        if (Renamed.Count > 0) sb.Append($"; {Renamed.Count} renamed (e.g. {Renamed[0].From} → {Renamed[0].To})");
        if (!IsExact) sb.Append("; ").Append(DescribeProblems());
        return sb.ToString();
    }
}

/// <summary>
/// Named tensors do not fit the model under an exact or strict <see cref="LoadPolicy"/>: <see cref="InvalidFileException.Reason"/>
/// lists the missing, unexpected and mis-shaped keys by name. Nothing was copied into the model.
/// </summary>
public sealed class StateDictMismatchException : InvalidFileException
{
    /// <summary>Creates the exception from the report; <paramref name="source"/> is the file (or what the tensors came from).</summary>
    public StateDictMismatchException(string source, LoadReport report)
        : base(source, $"the tensors do not fit the model '{report.Model}' ({report.Policy.ToString().ToLowerInvariant()} loading; nothing was loaded): "
            + $"{report.DescribeProblems()}. Load with LoadPolicy.Lenient to copy only what matches.")
    {
        Report = report;
    }

    /// <summary>The full comparison.</summary>
    public LoadReport Report { get; }
}
