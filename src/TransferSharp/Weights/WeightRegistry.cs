using TransferSharp.Vision.Zoo;

namespace TransferSharp.Weights;

/// <summary>
/// The weight tags per architecture: torchvision's and timm's published checkpoints (built in), plus
/// any registered at run time (<see cref="Register"/>). Queries return only tags whose architecture
/// the zoo can build; names are case-insensitive, and Keras aliases of architectures work.
/// </summary>
public static class WeightRegistry
{
    private static readonly object Sync = new();
    private static List<WeightTag>? _tags;
    private static Dictionary<string, string>? _defaults;
    private static readonly Dictionary<string, string> _defaultOverrides = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Names that select an architecture's default weights.</summary>
    public static IReadOnlyList<string> DefaultNames { get; } = ["imagenet", "default", "pretrained", "true"];

    /// <summary>True when <paramref name="weights"/> asks for the default tag ("imagenet", "default", …).</summary>
    public static bool IsDefaultName(string weights) => DefaultNames.Contains(weights.Trim(), StringComparer.OrdinalIgnoreCase);

    private static void EnsureLoaded()
    {
        if (_tags is not null) return;
        lock (Sync)
        {
            if (_tags is not null) return;
            var (tags, defaults) = PretrainedCatalog.Load();
            _defaults = defaults;
            _tags = tags;
        }
    }

    private static List<WeightTag> Snapshot()
    {
        EnsureLoaded();
        lock (Sync) return [.. _tags!];
    }

    /// <summary>Every tag whose architecture is in the zoo.</summary>
    public static IReadOnlyList<WeightTag> All => Snapshot().Where(t => ModelZoo.Contains(t.Architecture)).ToList();

    /// <summary>Every registered tag, including those for architectures the zoo cannot build yet.</summary>
    public static IReadOnlyList<WeightTag> AllRegistered => Snapshot();

    /// <summary>The tags of an architecture (zoo name or alias), the default first; empty when the zoo has no such architecture.</summary>
    public static IReadOnlyList<WeightTag> For(string architecture)
    {
        if (!ModelZoo.Contains(architecture)) return [];
        var arch = ModelZoo.Get(architecture).Name;
        var tags = Snapshot().Where(t => t.Architecture.Equals(arch, StringComparison.OrdinalIgnoreCase)).ToList();
        var def = Default(arch);
        if (def is not null && tags.Remove(def)) tags.Insert(0, def);
        return tags;
    }

    /// <summary>The default tag of an architecture: torchvision's DEFAULT (its best tag) where torchvision
    /// publishes the architecture, timm's primary tag otherwise; null when there is none or the zoo lacks the architecture.</summary>
    public static WeightTag? Default(string architecture)
    {
        if (!ModelZoo.Contains(architecture)) return null;
        var arch = ModelZoo.Get(architecture).Name;
        EnsureLoaded();
        lock (Sync)
        {
            var tags = _tags!.Where(t => t.Architecture.Equals(arch, StringComparison.OrdinalIgnoreCase)).ToList();
            foreach (var defaults in new[] { _defaultOverrides, _defaults! })
            {
                if (defaults.TryGetValue(arch, out var name) && tags.FirstOrDefault(t => t.Tag.Equals(name, StringComparison.OrdinalIgnoreCase)) is { } d) return d;
            }
            return tags.FirstOrDefault();
        }
    }

    /// <summary>Finds a tag of an architecture by tag name ("IMAGENET1K_V2", "a1h_in1k"), full name
    /// ("resnet50.IMAGENET1K_V2", "legacy_xception.tf_in1k") or a default name ("imagenet").</summary>
    public static bool TryGet(string architecture, string weights, out WeightTag tag)
    {
        tag = null!;
        if (!ModelZoo.Contains(architecture)) return false;
        if (IsDefaultName(weights))
        {
            var d = Default(architecture);
            if (d is null) return false;
            tag = d;
            return true;
        }
        var arch = ModelZoo.Get(architecture).Name;
        var name = weights.Trim();
        foreach (var t in For(arch))
        {
            if (t.Tag.Equals(name, StringComparison.OrdinalIgnoreCase) || t.Name.Equals(name, StringComparison.OrdinalIgnoreCase)
                || (t.SourceArchitecture is { } src && $"{src}.{t.Tag}".Equals(name, StringComparison.OrdinalIgnoreCase)))
            {
                tag = t;
                return true;
            }
        }
        return false;
    }

    /// <summary>Like <see cref="TryGet"/>, but throws <see cref="UnknownWeightsException"/> listing the tags there are.</summary>
    public static WeightTag Get(string architecture, string weights)
    {
        if (TryGet(architecture, weights, out var tag)) return tag;
        if (!ModelZoo.Contains(architecture))
            throw new UnknownWeightsException($"no weights for '{architecture}': it is not in the zoo (run `transfer models`)");
        var available = For(architecture);
        throw new UnknownWeightsException(available.Count == 0
            ? $"no pretrained weights are registered for '{architecture}'; pass a checkpoint file instead"
            : $"'{weights}' is not a weight tag of {ModelZoo.Get(architecture).Name} nor an existing file; tags: {string.Join(", ", available.Select(t => t.Tag))} (or \"imagenet\" for {available[0].Tag})");
    }

    /// <summary>Finds a tag by its full name "architecture.tag" (zoo or publisher architecture name).</summary>
    public static WeightTag? Find(string fullName)
    {
        int dot = fullName.IndexOf('.');
        if (dot <= 0) return null;
        var archPart = fullName[..dot];
        var arch = Snapshot().FirstOrDefault(t => t.Architecture.Equals(archPart, StringComparison.OrdinalIgnoreCase)
            || (t.SourceArchitecture?.Equals(archPart, StringComparison.OrdinalIgnoreCase) ?? false))?.Architecture ?? archPart;
        return TryGet(arch, fullName, out var tag) ? tag : null;
    }

    /// <summary>
    /// Adds a tag (for example one whose <see cref="WeightTag.LocalFile"/> returns a bundled checkpoint).
    /// A tag of the same full name is replaced. With <paramref name="makeDefault"/> it becomes the
    /// architecture's default.
    /// </summary>
    public static void Register(WeightTag tag, bool makeDefault = false)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (tag.Files.Count == 0 && tag.LocalFile is null)
            throw new ArgumentException($"weight tag {tag.Name} has neither a download URL nor a local file", nameof(tag));
        // Text encoders keep their hub names ("bge-small-en-v1.5") and are found by name, never by splitting "architecture.tag".
        if ((tag.Kind != WeightKind.TextEncoder && tag.Architecture.Contains('.')) || tag.Tag.Contains('.'))
            throw new ArgumentException($"weight tag {tag.Name}: architecture and tag names may not contain '.'", nameof(tag));
        EnsureLoaded();
        lock (Sync)
        {
            _tags!.RemoveAll(t => t.Name.Equals(tag.Name, StringComparison.OrdinalIgnoreCase));
            _tags.Add(tag);
            if (makeDefault) _defaultOverrides[tag.Architecture] = tag.Tag;
        }
    }

    /// <summary>The text encoders (<see cref="WeightKind.TextEncoder"/> tags), each model's default tag first.</summary>
    public static IReadOnlyList<WeightTag> TextEncoders
    {
        get
        {
            var tags = Snapshot().Where(t => t.Kind == WeightKind.TextEncoder).ToList();
            return tags.GroupBy(t => t.Architecture, StringComparer.OrdinalIgnoreCase)
                .SelectMany(g => g.OrderBy(t => ReferenceEquals(t, DefaultTextEncoder(g.Key)) ? 0 : 1)).ToList();
        }
    }

    /// <summary>The default tag of a text encoder model (the one registered with <c>makeDefault</c>, else the first), or null.</summary>
    private static WeightTag? DefaultTextEncoder(string model)
    {
        EnsureLoaded();
        lock (Sync)
        {
            var tags = _tags!.Where(t => t.Kind == WeightKind.TextEncoder && t.Architecture.Equals(model, StringComparison.OrdinalIgnoreCase)).ToList();
            if (_defaultOverrides.TryGetValue(model, out var name) && tags.FirstOrDefault(t => t.Tag.Equals(name, StringComparison.OrdinalIgnoreCase)) is { } d) return d;
            return tags.FirstOrDefault();
        }
    }

    /// <summary>
    /// Finds a text encoder by name, case-insensitively: the model ("all-MiniLM-L6-v2") or its hub repository
    /// ("sentence-transformers/all-MiniLM-L6-v2") selects its default tag; "model.tag" ("all-MiniLM-L6-v2.hub") or
    /// "repository.tag" selects that tag. Null when no text encoder has that name.
    /// </summary>
    public static WeightTag? FindTextEncoder(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        name = name.Trim();
        var tags = Snapshot().Where(t => t.Kind == WeightKind.TextEncoder).ToList();
        bool Is(string? a, string b) => a is not null && a.Equals(b, StringComparison.OrdinalIgnoreCase);
        if (tags.FirstOrDefault(t => Is(t.Architecture, name) || Is(t.SourceArchitecture, name)) is { } model) return DefaultTextEncoder(model.Architecture);
        return tags.FirstOrDefault(t => Is(t.Name, name) || Is(t.SourceArchitecture is { } s ? $"{s}.{t.Tag}" : null, name));
    }

    /// <summary>Removes a registered tag; true if there was one.</summary>
    public static bool Unregister(string fullName)
    {
        EnsureLoaded();
        lock (Sync)
        {
            var removed = _tags!.RemoveAll(t => t.Name.Equals(fullName, StringComparison.OrdinalIgnoreCase)) > 0;
            foreach (var (arch, tag) in _defaultOverrides.ToList())
            {
                if ($"{arch}.{tag}".Equals(fullName, StringComparison.OrdinalIgnoreCase)) _defaultOverrides.Remove(arch);
            }
            return removed;
        }
    }
}
