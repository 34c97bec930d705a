using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Weights;

/// <summary>
/// Builds the built-in weight tags from the embedded copy of ../shared/reference/pretrained_weights.json
/// (torchvision's weights enums and timm's pretrained configs for the zoo's architectures).
/// </summary>
internal static partial class PretrainedCatalog
{
    private const string ResourceName = "TransferSharp.Weights.pretrained_weights.json";

    /// <summary>timm model names that differ from the zoo's.</summary>
    private static readonly Dictionary<string, string> TimmToZoo = new(StringComparer.Ordinal)
    {
        ["legacy_xception"] = "xception",
        ["mobilenetv1_100"] = "mobilenet_v1",
    };

    /// <summary>timm checkpoints whose architecture the zoo does not build: timm's mobilenetv2_100
    /// (EfficientNet-style blocks, other module names) is not torchvision's mobilenet_v2.</summary>
    private static readonly HashSet<string> TimmSkipped = new(StringComparer.Ordinal) { "mobilenetv2_100" };

    /// <summary>timm's default tag per architecture (the first in its default_cfgs), for architectures
    /// torchvision does not publish; the JSON lists tags alphabetically, so the order is not in it.</summary>
    internal static readonly Dictionary<string, string> TimmPrimary = new(StringComparer.Ordinal)
    {
        ["xception"] = "tf_in1k",
        ["inception_resnet_v2"] = "tf_in1k",
        ["nasnetalarge"] = "tf_in1k",
        ["resnetv2_50"] = "a1h_in1k",
        ["resnetv2_101"] = "a1h_in1k",
        ["resnetv2_50x1_bit"] = "goog_distilled_in1k",
        ["resnetv2_101x1_bit"] = "goog_in21k_ft_in1k",
        ["resnetv2_152x2_bit"] = "goog_teacher_in21k_ft_in1k",
        ["mobilenet_v1"] = "ra4_e3600_r224_in1k",
        ["tf_efficientnet_b0"] = "ns_jft_in1k",
        ["tf_efficientnet_b1"] = "ns_jft_in1k",
        ["tf_efficientnet_b2"] = "ns_jft_in1k",
        ["tf_efficientnet_b3"] = "ns_jft_in1k",
        ["tf_efficientnet_b4"] = "ns_jft_in1k",
        ["tf_efficientnet_b5"] = "ns_jft_in1k",
        ["tf_efficientnet_b6"] = "ns_jft_in1k",
        ["tf_efficientnet_b7"] = "ns_jft_in1k",
        ["tf_efficientnetv2_b0"] = "in1k",
        ["tf_efficientnetv2_b1"] = "in1k",
        ["tf_efficientnetv2_b2"] = "in1k",
        ["tf_efficientnetv2_b3"] = "in21k_ft_in1k",
        ["vit_small_patch16_224"] = "augreg_in21k_ft_in1k",
        ["vit_base_patch16_224"] = "augreg2_in21k_ft_in1k",
        ["vit_large_patch16_224"] = "augreg_in21k_ft_in1k",
        ["vit_small_patch14_dinov2"] = "lvd142m",
        ["vit_base_patch14_dinov2"] = "lvd142m",
        ["vit_large_patch14_dinov2"] = "lvd142m",
        ["vit_small_patch14_reg4_dinov2"] = "lvd142m",
        ["vit_base_patch14_reg4_dinov2"] = "lvd142m",
        ["vit_large_patch14_reg4_dinov2"] = "lvd142m",
    };

    // torch.hub's convention: "name-<sha256 prefix>.ext".
    [GeneratedRegex(@"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$")]
    private static partial Regex HashInFileName();

    /// <summary>The SHA-256 prefix a torchvision download URL carries in its file name, if any.
    /// torchvision loads its weights enums with check_hash=True, so their names are trustworthy; other
    /// files on the same host are not always (pytorch/vision#7744), so timm's URLs get a hash only when
    /// they are one of torchvision's own.</summary>
    internal static string? Sha256PrefixFromUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !uri.Host.Equals("download.pytorch.org", StringComparison.OrdinalIgnoreCase)) return null;
        var m = HashInFileName().Match(uri.AbsolutePath);
        return m.Success ? m.Groups[1].Value : null;
    }

    public static (List<WeightTag> Tags, Dictionary<string, string> Defaults) Load()
    {
        using var stream = typeof(PretrainedCatalog).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"resource {ResourceName} is missing from the TransferSharp assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var doc = JsonDocument.Parse(NaNToNull(reader.ReadToEnd()));
        var tags = new List<WeightTag>();
        var tvParams = new Dictionary<string, long>(StringComparer.Ordinal);
        var tvHashes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var entry in doc.RootElement.GetProperty("torchvision").EnumerateObject())
        {
            var tag = TorchVisionTag(entry.Name, entry.Value);
            tags.Add(tag);
            if (tag.ParameterCount is long p) tvParams[tag.Architecture] = p;
            tvHashes[tag.Files[0].Url] = tag.Files[0].Sha256Prefix;
        }
        foreach (var entry in doc.RootElement.GetProperty("timm").EnumerateObject())
        {
            if (TimmTag(entry.Name, entry.Value, tvParams, tvHashes) is { } tag) tags.Add(tag);
        }
        var defaults = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var arch in tags.Select(t => t.Architecture).Distinct())
        {
            // torchvision's DEFAULT is its best published tag; otherwise timm's primary tag.
            var best = tags.Where(t => t.Architecture == arch && t.Source == WeightSource.TorchVision && t.Top1 is not null)
                .OrderByDescending(t => t.Top1).FirstOrDefault();
            if (best is not null) defaults[arch] = best.Tag;
            else if (TimmPrimary.TryGetValue(arch, out var primary)) defaults[arch] = primary;
            else defaults[arch] = tags.First(t => t.Architecture == arch).Tag;
        }
        tags.AddRange(TextEncoderTags());
        return (tags, defaults);
    }

    private static WeightTag TorchVisionTag(string key, JsonElement e)
    {
        var (arch, tag) = Split(key);
        var url = e.GetProperty("url").GetString()!;
        var interpolation = Preprocessing.ParseInterpolation(e.GetProperty("interpolation").GetString()!);
        var mean = Doubles(e.GetProperty("mean"));
        var std = Doubles(e.GetProperty("std"));
        if (arch == "inception_v3")
        {
            // torchvision's pretrained Inception v3 sets transform_input=True: inside the model it turns
            // ImageNet-normalised input into (x − 0.5) / 0.5. Our graph has no such step, so the same math
            // is normalising with mean = std = 0.5 directly.
            mean = [0.5, 0.5, 0.5];
            std = [0.5, 0.5, 0.5];
        }
        var metrics = e.GetProperty("metrics").GetProperty("ImageNet-1K");
        var top1 = Number(metrics.GetProperty("acc@1"));
        bool featuresOnly = tag.EndsWith("_FEATURES", StringComparison.Ordinal);
        return new WeightTag
        {
            Architecture = arch,
            Tag = tag,
            Source = WeightSource.TorchVision,
            Files = [new WeightFile(url, Sha256PrefixFromUrl(url))],
            Preprocessing = new Preprocessing
            {
                ResizeSize = e.GetProperty("resize_size")[0].GetInt32(),
                CropSize = e.GetProperty("crop_size")[0].GetInt32(),
                Interpolation = interpolation,
                Mean = mean,
                Std = std,
            },
            NumClasses = 1000,
            Labels = featuresOnly ? [] : ClassLabels.ImageNet1k,
            FeaturesOnly = featuresOnly,
            Top1 = top1,
            Top5 = Number(metrics.GetProperty("acc@5")),
            ParameterCount = e.TryGetProperty("num_params", out var np) && np.ValueKind == JsonValueKind.Number ? np.GetInt64() : null,
            License = "bsd-3-clause",
            Recipe = e.TryGetProperty("recipe", out var r) ? r.GetString() : null,
        };
    }

    private static WeightTag? TimmTag(string key, JsonElement e, Dictionary<string, long> tvParams, Dictionary<string, string?> tvHashes)
    {
        var (timmArch, tag) = Split(key);
        if (TimmSkipped.Contains(timmArch)) return null;
        var arch = TimmToZoo.GetValueOrDefault(timmArch, timmArch);
        var files = new List<WeightFile>();
        foreach (var field in new[] { "weights_url", "legacy_url" })
        {
            if (e.TryGetProperty(field, out var u) && u.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 } url
                && files.All(f => f.Url != url))
                files.Add(new WeightFile(url, tvHashes.GetValueOrDefault(url)));
        }
        var inputSize = e.GetProperty("input_size");
        int numClasses = e.GetProperty("num_classes").GetInt32();
        return new WeightTag
        {
            Architecture = arch,
            Tag = tag,
            Source = WeightSource.Timm,
            SourceArchitecture = timmArch,
            Files = files,
            Preprocessing = Preprocessing.FromCropPct(inputSize[1].GetInt32(), e.GetProperty("crop_pct").GetDouble(),
                Preprocessing.ParseInterpolation(e.GetProperty("interpolation").GetString()!), Doubles(e.GetProperty("mean")), Doubles(e.GetProperty("std"))),
            NumClasses = numClasses,
            Labels = numClasses == 1000 ? ClassLabels.ImageNet1k : ClassLabels.Numbered(numClasses),
            // A checkpoint without a classifier (DINOv2's) is a feature extractor.
            FeaturesOnly = numClasses == 0,
            Top1 = Number(e.GetProperty("top1")),
            Top5 = Number(e.GetProperty("top5")),
            // timm publishes no parameter count; where the architecture is torchvision's, it is the same.
            ParameterCount = numClasses == 1000 && arch != "inception_v3" && tvParams.TryGetValue(arch, out var p) ? p : null,
            License = e.TryGetProperty("license", out var l) ? l.GetString() : null,
        };
    }

    private static (string Arch, string Tag) Split(string key)
    {
        int dot = key.IndexOf('.');
        return (key[..dot], key[(dot + 1)..]);
    }

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static double? Number(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => v.GetDouble(),
        JsonValueKind.String when double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => null,
    };

    /// <summary>Python's json module writes NaN as a bare token, which is not JSON; make it null.</summary>
    internal static string NaNToNull(string json)
    {
        var sb = new StringBuilder(json.Length);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                sb.Append(c);
                if (c == '\\' && i + 1 < json.Length) sb.Append(json[++i]);
                else if (c == '"') inString = false;
            }
            else if (c == '"')
            {
                inString = true;
                sb.Append(c);
            }
            else if (string.CompareOrdinal(json, i, "NaN", 0, 3) == 0)
            {
                sb.Append("null");
                i += 2;
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
