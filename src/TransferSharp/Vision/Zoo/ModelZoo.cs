using TransferSharp.Vision.Graph;

namespace TransferSharp.Vision.Zoo;

/// <summary>How to build a zoo model. Configuration as data, one record for every family.</summary>
public sealed record ModelOptions
{
    /// <summary>Classes of the classifier; 0 builds the model without one (output = pre-logits features).</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Channels of the input image (1 for grayscale; pretrained first-layer weights are adapted).</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Input height and width the graph is built for (null: the family's native size). Other
    /// sizes run too; this only sets the summary's shapes.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Dropout before the classifier (null: the reference's default).</summary>
    public double? DropRate { get; init; }

    /// <summary>Stochastic depth for training (timm's <c>drop_path_rate</c>: the largest per-sample drop probability of a
    /// residual branch, reached by the last block; null or 0 builds the model without DropPath, as for evaluation). Used by
    /// families whose reference has it (ConvNeXt, ViT, DINOv2: after each block's attention and MLP branch).</summary>
    public double? DropPathRate { get; init; }

    /// <summary>Keep Inception v3's auxiliary classifier (training mode only).</summary>
    public bool AuxLogits { get; init; } = true;

    /// <summary>Seed of the generator fresh (random) weights are drawn from: the same seed, the same weights, in any
    /// process. Weights loaded afterwards replace them.</summary>
    public long Seed { get; init; }
}

/// <summary>A zoo architecture: its name, where it comes from, and how to build it.</summary>
/// <param name="Name">Zoo name, as in PRODUCT.md ("resnet50").</param>
/// <param name="Family">Family ("ResNet").</param>
/// <param name="Reference">Implementation whose state dict and semantics it reproduces ("torchvision", "timm").</param>
/// <param name="ReferenceModel">The reference's own model name ("legacy_xception").</param>
/// <param name="Aliases">Other accepted names (the Keras Applications name first).</param>
/// <param name="NativeSize">Native input resolution.</param>
/// <param name="Builder">Builds the graph.</param>
public sealed record ZooEntry(string Name, string Family, string Reference, string ReferenceModel, IReadOnlyList<string> Aliases,
    int NativeSize, Func<ModelOptions, ModelGraph> Builder)
{
    /// <summary>Builds the graph with the given options.</summary>
    public ModelGraph Build(ModelOptions? options = null) => Builder(options ?? new ModelOptions());
}

/// <summary>No zoo model has that name.</summary>
public sealed class UnknownModelException(string message) : TransferSharpException(message);

/// <summary>
/// The registry of architectures (timm's registry, Keras Applications' names). Each family file
/// contributes its entries; names and aliases are case-insensitive.
/// </summary>
public static class ModelZoo
{
    private static readonly object Sync = new();

    // The families of this assembly, then what the host registered (Register), in order. Replaced, never mutated, so a
    // reader holds a consistent snapshot without a lock.
    private static (IReadOnlyList<ZooEntry> Entries, Dictionary<string, ZooEntry> ByName)? _state;

    private static (IReadOnlyList<ZooEntry> Entries, Dictionary<string, ZooEntry> ByName) State
    {
        get
        {
            if (_state is { } s) return s;
            lock (Sync)
            {
                return _state ??= Index([
                    .. Vgg.Entries(), .. ResNet.Entries(), .. InceptionV3.Entries(), .. MobileNetV2.Entries(), .. DenseNet.Entries(),
                    .. ResNetV2.Entries(), .. InceptionResNetV2.Entries(), .. Xception.Entries(), .. MobileNetV1.Entries(), .. NasNet.Entries(),
                    .. EfficientNet.Entries(), .. TfEfficientNet.Entries(), .. MobileNetV3.Entries(),
                    .. ConvNeXt.Entries(),
                    .. VisionTransformer.Entries(),
                ]);
            }
        }
    }

    private static (IReadOnlyList<ZooEntry>, Dictionary<string, ZooEntry>) Index(IReadOnlyList<ZooEntry> entries)
    {
        var map = new Dictionary<string, ZooEntry>(StringComparer.OrdinalIgnoreCase);
        foreach (var e in entries)
        {
            map.Add(e.Name, e);
            foreach (var a in e.Aliases) map.TryAdd(a, e);
        }
        return (entries, map);
    }

    /// <summary>
    /// Adds an architecture built outside this assembly (a model package such as <c>TransferSharp.Models.Cntk</c>'s
    /// <c>resnet18_cntk</c>); the host calls it once at start-up, before the name is used. Registering the same entry
    /// again does nothing; another entry under a name the zoo has is an error.
    /// </summary>
    public static void Register(ZooEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (Sync)
        {
            var (entries, byName) = State;
            if (byName.TryGetValue(entry.Name, out var existing))
            {
                if (existing == entry) return;
                throw new ArgumentException($"the zoo already has a model named '{entry.Name}'", nameof(entry));
            }
            _state = Index([.. entries, entry]);
        }
    }

    /// <summary>Every architecture, in registry order.</summary>
    public static IReadOnlyList<ZooEntry> Entries => State.Entries;

    /// <summary>True when the name or alias is in the zoo.</summary>
    public static bool Contains(string nameOrAlias) => State.ByName.ContainsKey(nameOrAlias);

    /// <summary>The entry for a name or alias (case-insensitive).</summary>
    public static ZooEntry Get(string nameOrAlias)
    {
        if (State.ByName.TryGetValue(nameOrAlias, out var e)) return e;
        var close = State.ByName.Keys
            .Select(k => (k, d: EditDistance(k.ToLowerInvariant(), nameOrAlias.ToLowerInvariant())))
            .Where(t => t.d <= 3).OrderBy(t => t.d).Take(3).Select(t => t.k).ToArray();
        // Models of other packages are named here only to say where they come from.
        if (nameOrAlias.Equals("resnet18_cntk", StringComparison.OrdinalIgnoreCase))
            throw new UnknownModelException("resnet18_cntk is not registered: it comes with the package TransferSharp.Models.Cntk; reference it and call TransferSharp.Onnx.OnnxZoo.Register() once at start-up");
        throw new UnknownModelException($"no model named '{nameOrAlias}' in the zoo"
            + (close.Length > 0 ? $"; did you mean {string.Join(" or ", close)}?" : "")
            + " Run `transfer models` for the list.");
    }

    /// <summary>Builds a model with freshly initialised weights (see <see cref="TransferSharp.Weights.PretrainedWeights"/> and <see cref="TransferSharp.Vision.VisionModel"/> for trained ones).</summary>
    public static GraphModule Create(string nameOrAlias, ModelOptions? options = null) => new(Get(nameOrAlias).Build(options), options?.Seed ?? 0);

    private static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Shared head: global average pool → (dropout) → the linear classifier (see <see cref="GraphBuilder.Head"/>).
    /// <paramref name="weightAs1x1Conv"/> keeps the classifier weight in the [out, in, 1, 1] layout of
    /// heads that apply a 1×1 convolution to the pooled map (timm's ResNetV2). <paramref name="pooledNorm"/> normalises
    /// the pooled [N, C, 1, 1] map before the classifier (timm's ConvNeXt head.norm); that map is then the feature node, so
    /// pooled features are the reference's pre-logits.</summary>
    internal static Sym PoolAndClassify(GraphBuilder b, Sym features, ModelOptions o, string fcName, double dropRate = 0, string? dropName = null,
        bool weightAs1x1Conv = false, string poolName = "global_pool", (string Name, Op Norm)? pooledNorm = null)
    {
        Sym x;
        if (pooledNorm is { } norm)
        {
            var normed = b.Add(norm.Norm, norm.Name, b.GlobalPool(features, PoolKind.Avg, keepDims: true, name: poolName));
            b.Features(normed);
            x = b.Flatten(normed, poolName[..(poolName.LastIndexOf('.') + 1)] + "flatten");
        }
        else
        {
            b.Features(features);
            x = b.GlobalPool(features, PoolKind.Avg, keepDims: false, name: poolName);
        }
        double p = o.DropRate ?? dropRate;
        if (p > 0 || dropName is not null) x = b.Dropout(x, p, dropName);
        return b.Head(x, o.NumClasses, fcName, weightAs1x1Conv);
    }

    internal static GraphBuilder Builder(string name, ModelOptions o, int nativeSize) =>
        new(name, o.InChannels, o.ImageSize ?? nativeSize, o.ImageSize ?? nativeSize);
}
