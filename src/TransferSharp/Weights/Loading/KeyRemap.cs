using System.Text.RegularExpressions;

namespace TransferSharp.Weights;

/// <summary>
/// Checkpoint names that differ from the model's for known, mechanical reasons, mapped to the model's
/// names. A rename is applied only when it produces a key the model has and the original is not one.
/// </summary>
internal static partial class KeyRemap
{
    /// <summary>How a checkpoint tensor must be reshaped to fit (timm's VGG head is convolutional).</summary>
    internal enum Reshape { None, ToModelShape }

    internal readonly record struct Mapping(string ModelKey, Reshape Reshape);

    // torchvision's own pattern for DenseNet checkpoints saved before its module names lost the dot:
    // "denselayer1.norm.1.weight" → "denselayer1.norm1.weight".
    [GeneratedRegex(@"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")]
    private static partial Regex LegacyDenseNet();

    // timm's VGG keeps torchvision's features but turns the first two classifier layers into a 7×7 and
    // a 1×1 convolution (ConvMlp) and names the last one head.fc. A 7×7 kernel over the 7×7 pooled map
    // is exactly classifier.0 on the flattened (C, H, W) map, so reshaping the kernel is exact.
    private static readonly (string Timm, string TorchVision, Reshape Reshape)[] TimmVgg =
    [
        ("pre_logits.fc1.", "classifier.0.", Reshape.ToModelShape),
        ("pre_logits.fc2.", "classifier.3.", Reshape.ToModelShape),
        ("head.fc.", "classifier.6.", Reshape.None),
    ];

    private const string DataParallelPrefix = "module.";

    public static Mapping Map(string key, Func<string, bool> modelHas)
    {
        if (modelHas(key)) return new(key, Reshape.None);
        var k = key;
        while (k.StartsWith(DataParallelPrefix, StringComparison.Ordinal) && !modelHas(k))
            k = k[DataParallelPrefix.Length..];
        if (modelHas(k)) return new(k, Reshape.None);
        var dense = LegacyDenseNet().Match(k);
        if (dense.Success && modelHas(dense.Groups[1].Value + dense.Groups[2].Value))
            return new(dense.Groups[1].Value + dense.Groups[2].Value, Reshape.None);
        foreach (var (timm, tv, reshape) in TimmVgg)
        {
            if (k.StartsWith(timm, StringComparison.Ordinal) && modelHas(tv + k[timm.Length..]))
                return new(tv + k[timm.Length..], reshape);
        }
        return new(k, Reshape.None);
    }
}
