using System.Collections;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Weights;

/// <summary>Who published a checkpoint.</summary>
public enum WeightSource
{
    /// <summary>torchvision's weights enums (download.pytorch.org).</summary>
    TorchVision,
    /// <summary>timm's pretrained configurations (Hugging Face hub, GitHub releases).</summary>
    Timm,
    /// <summary>A file shipped with an application or package, or registered by the user.</summary>
    Local,
    /// <summary>A model repository on the Hugging Face hub (text encoders: sentence-transformers, BAAI, …), pinned to a commit.</summary>
    HuggingFace,
}

/// <summary>What a tag's files make: one checkpoint of a zoo architecture, or the model folder of a text encoder.</summary>
public enum WeightKind
{
    /// <summary>One checkpoint file of a zoo (image) architecture; <see cref="WeightTag.Files"/> are alternative sources of it.</summary>
    ImageModel,

    /// <summary>A Hugging Face / sentence-transformers model folder (config.json, model.safetensors, vocab.txt, pooling
    /// files) that <c>TextEncoder.Load</c> reads; <see cref="WeightTag.Files"/> are all needed, each with its
    /// <see cref="WeightFile.Path"/> in the folder, and a bundled tag's <see cref="WeightTag.LocalFile"/> returns the folder.</summary>
    TextEncoder,
}

/// <summary>One place a checkpoint can be downloaded from.</summary>
/// <param name="Url">HTTPS URL (Hugging Face <c>resolve</c> URLs redirect; redirects are followed).</param>
/// <param name="Sha256Prefix">Known prefix of the file's SHA-256 (lowercase hex), checked after
/// download; torchvision file names carry one (<c>resnet50-0676ba61.pth</c>). Null when unknown.</param>
/// <param name="Path">Where the file goes in the model folder of a <see cref="WeightKind.TextEncoder"/> tag
/// (<c>1_Pooling/config.json</c>); null for a single checkpoint.</param>
public sealed record WeightFile(string Url, string? Sha256Prefix = null, string? Path = null);

/// <summary>
/// A named set of pretrained weights for one architecture, with everything that belongs to it: where
/// to get the file, the eval preprocessing it was trained with, its classes and reported accuracy
/// (torchvision's weights enum and timm's pretrained config carry the same).
/// </summary>
public sealed record WeightTag
{
    /// <summary>Zoo architecture name ("resnet50", "xception").</summary>
    public required string Architecture { get; init; }

    /// <summary>Tag within the architecture ("IMAGENET1K_V2", "a1h_in1k").</summary>
    public required string Tag { get; init; }

    /// <summary>Publisher of the weights.</summary>
    public required WeightSource Source { get; init; }

    /// <summary>The publisher's model name when it differs from the zoo's ("legacy_xception").</summary>
    public string? SourceArchitecture { get; init; }

    /// <summary>What the files make (a zoo checkpoint unless stated).</summary>
    public WeightKind Kind { get; init; } = WeightKind.ImageModel;

    /// <summary>Download locations, preferred first (timm: the Hugging Face safetensors, then the legacy release asset);
    /// for a <see cref="WeightKind.TextEncoder"/>, every file of its folder.</summary>
    public IReadOnlyList<WeightFile> Files { get; init; } = [];

    /// <summary>A checkpoint file that ships with the application instead of a download: returns its path.</summary>
    public Func<string>? LocalFile { get; init; }

    /// <summary>The eval transform the weights expect (image models; a text encoder's tokenizer travels in its files).</summary>
    public Preprocessing Preprocessing { get; init; } = new();

    /// <summary>Number of outputs of the checkpoint's classifier.</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Class names, index by index (ImageNet-1k names, "class N" where none are published,
    /// empty when the checkpoint's classifier is not meant to be used).</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>True when only the feature extractor is valid (torchvision's vgg16 IMAGENET1K_FEATURES).</summary>
    public bool FeaturesOnly { get; init; }

    /// <summary>Reported ImageNet top-1 accuracy in percent, if published.</summary>
    public double? Top1 { get; init; }

    /// <summary>Reported ImageNet top-5 accuracy in percent, if published.</summary>
    public double? Top5 { get; init; }

    /// <summary>Parameter count as published (null when the source gives none).</summary>
    public long? ParameterCount { get; init; }

    /// <summary>Licence of the weights, as published ("apache-2.0", "bsd-3-clause", "cc-by-nc-4.0").</summary>
    public string? License { get; init; }

    /// <summary>Training recipe or reference page, if published.</summary>
    public string? Recipe { get; init; }

    /// <summary>"architecture.tag", the name that selects these weights anywhere.</summary>
    public string Name => $"{Architecture}.{Tag}";

    /// <summary>The preferred download URL (null for bundled files).</summary>
    public string? Url => Files.Count > 0 ? Files[0].Url : null;

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>Class-name lists.</summary>
public static class ClassLabels
{
    private static readonly Lazy<IReadOnlyList<string>> _imageNet = new(() =>
    {
        using var stream = typeof(ClassLabels).Assembly.GetManifestResourceStream("TransferSharp.Weights.imagenet_classes.txt")
            ?? throw new InvalidOperationException("the ImageNet labels resource is missing from the TransferSharp assembly");
        using var reader = new StreamReader(stream);
        var labels = new List<string>(1000);
        while (reader.ReadLine() is { } line) if (line.Length > 0) labels.Add(line);
        return labels;
    });

    /// <summary>The 1000 ImageNet-1k class names, in torchvision's order.</summary>
    public static IReadOnlyList<string> ImageNet1k => _imageNet.Value;

    /// <summary>"class 0" … "class N−1", for checkpoints whose class names are not published (ImageNet-21k).</summary>
    public static IReadOnlyList<string> Numbered(int count) => new NumberedLabels(count);

    private sealed class NumberedLabels(int count) : IReadOnlyList<string>
    {
        public string this[int index] => (uint)index < (uint)count ? $"class {index}" : throw new ArgumentOutOfRangeException(nameof(index));
        public int Count => count;
        public IEnumerator<string> GetEnumerator()
        {
            for (int i = 0; i < count; i++) yield return $"class {i}";
        }
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
