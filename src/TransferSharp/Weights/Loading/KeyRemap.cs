using System.Globalization;
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

    // torchvision's ConvNeXt holds timm's modules under other names: features.0 is the stem, features.{2i+1}.{j} block j
    // of stage i (block.0/2/3/5 = conv_dw/norm/fc1/fc2, layer_scale = gamma as [C, 1, 1]), features.{2i} stage i's
    // downsample, classifier.0/2 the head's norm and fc.
    [GeneratedRegex(@"^features\.(\d+)\.(\d+)\.(?:block\.(\d)\.(weight|bias)|(layer_scale))$")]
    private static partial Regex TorchVisionConvNeXtBlock();

    [GeneratedRegex(@"^(?:features\.(\d+)\.([01])|classifier\.([02]))\.(weight|bias)$")]
    private static partial Regex TorchVisionConvNeXtOther();

    private static readonly string[] ConvNeXtBlockParts = ["conv_dw", "", "norm", "mlp.fc1", "", "mlp.fc2"];

    /// <summary>The timm name of a torchvision ConvNeXt key (null when it is not one); gamma is reshaped to [C].</summary>
    private static Mapping? TorchVisionConvNeXt(string key)
    {
        var block = TorchVisionConvNeXtBlock().Match(key);
        if (block.Success && int.Parse(block.Groups[1].Value, CultureInfo.InvariantCulture) is var f && f % 2 == 1)
        {
            var prefix = $"stages.{(f - 1) / 2}.blocks.{block.Groups[2].Value}.";
            if (block.Groups[5].Success) return new(prefix + "gamma", Reshape.ToModelShape);
            int part = int.Parse(block.Groups[3].Value, CultureInfo.InvariantCulture);
            return part < ConvNeXtBlockParts.Length && ConvNeXtBlockParts[part].Length > 0
                ? new(prefix + ConvNeXtBlockParts[part] + "." + block.Groups[4].Value, Reshape.None) : null;
        }
        var other = TorchVisionConvNeXtOther().Match(key);
        if (!other.Success) return null;
        var tensor = other.Groups[4].Value;
        if (other.Groups[3].Success) return new((other.Groups[3].Value == "0" ? "head.norm." : "head.fc.") + tensor, Reshape.None);
        int feature = int.Parse(other.Groups[1].Value, CultureInfo.InvariantCulture);
        var sub = other.Groups[2].Value;
        if (feature == 0) return new($"stem.{sub}.{tensor}", Reshape.None);
        return feature % 2 == 0 ? new($"stages.{feature / 2}.downsample.{sub}.{tensor}", Reshape.None) : null;
    }

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
        if (TorchVisionConvNeXt(k) is { } convnext && modelHas(convnext.ModelKey)) return convnext;
        return new(k, Reshape.None);
    }
}
