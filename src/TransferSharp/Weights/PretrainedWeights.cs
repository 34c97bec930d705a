using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Vision.Zoo;
using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>What <see cref="PretrainedWeights.Load(GraphModule, string, IProgress{DownloadProgress}?, CancellationToken)"/> loaded.</summary>
/// <param name="Tag">The weight tag, or null for a file given by path.</param>
/// <param name="FilePath">The checkpoint file that was read.</param>
/// <param name="Metadata">String metadata stored in the file (safetensors' __metadata__, plain entries beside a .pth state dict).</param>
/// <param name="Preprocessing">The eval transform for this model and these weights (the tag's, adapted to
/// the model's input channels; the ImageNet default for files without a tag).</param>
/// <param name="Labels">Class names of the model's outputs when the classifier came from the checkpoint; empty otherwise.</param>
/// <param name="Report">What was loaded, key by key.</param>
public sealed record LoadedWeights(WeightTag? Tag, string FilePath, IReadOnlyDictionary<string, string> Metadata,
    Preprocessing Preprocessing, IReadOnlyList<string> Labels, LoadReport Report);

/// <summary>Settings for <see cref="PretrainedWeights"/>.</summary>
public sealed record WeightLoadOptions
{
    /// <summary>How strictly the checkpoint must fit. <see cref="LoadPolicy.Strict"/> (the default) refuses missing,
    /// unexpected or mis-shaped keys; a classifier of another size and a missing auxiliary head are never errors: they
    /// stay initialised and the report says so. <see cref="LoadPolicy.Lenient"/> loads what matches.</summary>
    public LoadPolicy Policy { get; init; } = LoadPolicy.Strict;

    /// <summary>The cache to use (default: as the environment configures it).</summary>
    public WeightCache? Cache { get; init; }
}

/// <summary>
/// One call from a model and a weights name to a loaded model: <c>"imagenet"</c>/<c>"default"</c> for the
/// architecture's default tag, a tag name (<c>"IMAGENET1K_V1"</c>, <c>"a1h_in1k"</c>,
/// <c>"resnet50.tv_in1k"</c>), or a local <c>.safetensors</c>/<c>.pth</c>/<c>.pt</c>/<c>.bin</c> file.
/// Tags are downloaded into the cache on first use.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>Loads weights into a zoo model (its graph name picks the tags).</summary>
    public static LoadedWeights Load(GraphModule model, string weights, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default) =>
        Load(model, weights, new WeightLoadOptions(), progress, ct);

    /// <summary>Loads weights into a model, with options (non-strict loading, another cache).</summary>
    public static LoadedWeights Load(GraphModule model, string weights, WeightLoadOptions options, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default) =>
        Task.Run(() => LoadAsync(model, weights, options, progress, ct), ct).GetAwaiter().GetResult();

    /// <summary>Builds a zoo model and loads weights into it (by default the architecture's default tag).</summary>
    public static (GraphModule Model, LoadedWeights Weights) Create(string architecture, string weights = "imagenet", ModelOptions? options = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        // Weights without a classifier (features only, e.g. resnet18_cntk) build the model headless by default.
        if (options is null && WeightRegistry.TryGet(architecture, weights, out var tag) && tag.NumClasses == 0)
            options = new ModelOptions { NumClasses = 0 };
        var model = ModelZoo.Create(architecture, options);
        try
        {
            return (model, Load(model, weights, progress, ct));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Resolves, downloads if needed, reads and loads the weights.</summary>
    public static async Task<LoadedWeights> LoadAsync(GraphModule model, string weights, WeightLoadOptions? options = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(weights);
        options ??= new WeightLoadOptions();
        var (tag, file) = Resolve(model.Graph.Name, weights);
        if (tag is not null) file = await (options.Cache ?? WeightCache.FromEnvironment()).GetAsync(tag, progress, ct).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        return LoadFile(model, file!, tag, options.Policy);
    }

    /// <summary>Loads a checkpoint file (any supported format) into a model.</summary>
    public static LoadedWeights LoadFile(GraphModule model, string path, LoadPolicy policy = LoadPolicy.Strict) => LoadFile(model, path, null, policy);

    private static LoadedWeights LoadFile(GraphModule model, string path, WeightTag? tag, LoadPolicy policy)
    {
        using var scope = NewDisposeScope();
        using var state = Checkpoint.Read(path);
        var report = StateDictLoader.Load(model, state, policy, tag is null ? path : $"weights {tag.Name} ({path})");
        var preprocessing = ForChannels(tag?.Preprocessing ?? Preprocessing.ImageNet, model.Graph.InChannels);
        var labels = report.HeadLoaded && tag is not null && tag.Labels.Count == model.NumClasses ? tag.Labels : [];
        return new LoadedWeights(tag, state.Source ?? path, state.Metadata, preprocessing, labels, report);
    }

    /// <summary>Which tag or file a weights name means for an architecture.</summary>
    internal static (WeightTag? Tag, string? File) Resolve(string architecture, string weights)
    {
        var name = weights.Trim();
        if (WeightRegistry.TryGet(architecture, name, out var tag)) return (tag, null);
        // Tags registered for a graph the zoo does not build (an imported model) are found by exact name.
        var registered = WeightRegistry.AllRegistered.FirstOrDefault(t => t.Architecture.Equals(architecture, StringComparison.OrdinalIgnoreCase)
            && (t.Tag.Equals(name, StringComparison.OrdinalIgnoreCase) || t.Name.Equals(name, StringComparison.OrdinalIgnoreCase)));
        if (registered is not null) return (registered, null);
        if (File.Exists(name)) return (null, Path.GetFullPath(name));
        var other = WeightRegistry.Find(name);
        if (other is not null)
            throw new UnknownWeightsException($"weights {other.Name} are for {other.Architecture}, not for {architecture}");
        if (Checkpoint.HasCheckpointExtension(name) || name.Contains('/') || name.Contains('\\'))
            throw new FileNotFoundException($"no checkpoint file at {Path.GetFullPath(name)}", Path.GetFullPath(name));
        return (WeightRegistry.Get(architecture, name), null); // throws, listing the tags there are
    }

    /// <summary>The tag's transform for a model with another number of input channels: gray input takes
    /// the mean of the RGB statistics; N channels repeat them.</summary>
    private static Preprocessing ForChannels(Preprocessing p, int channels)
    {
        if (channels == p.Channels || p.Mean.Count != 3) return p;
        if (channels == 1) return p with { Channels = 1, Mean = [p.Mean.Average()], Std = [p.Std.Average()] };
        return p with
        {
            Channels = channels,
            Mean = Enumerable.Range(0, channels).Select(i => p.Mean[i % 3]).ToArray(),
            Std = Enumerable.Range(0, channels).Select(i => p.Std[i % 3]).ToArray(),
        };
    }
}
