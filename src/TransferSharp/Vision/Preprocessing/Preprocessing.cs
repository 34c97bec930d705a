using System.Globalization;

namespace TransferSharp.Vision.Preprocessing;

/// <summary>Resampling filter used when resizing.</summary>
public enum Interpolation
{
    /// <summary>Nearest neighbour.</summary>
    Nearest,
    /// <summary>Bilinear (triangle filter, antialiased when downscaling, as PIL and torchvision do).</summary>
    Bilinear,
    /// <summary>Bicubic (a = −0.5, antialiased when downscaling, as PIL and torchvision do).</summary>
    Bicubic,
}

/// <summary>Order of the colour channels the model expects.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (PyTorch checkpoints).</summary>
    Rgb,
    /// <summary>Blue, green, red (Caffe/CNTK checkpoints).</summary>
    Bgr,
}

/// <summary>
/// The eval transform that belongs to a checkpoint (torchvision's weights enum carries it, timm's
/// pretrained config too): resize the shorter side, center-crop, scale pixels, normalise.
/// It travels with the weights, so it cannot silently differ from what the checkpoint was trained with.
/// </summary>
public sealed record Preprocessing
{
    /// <summary>Shorter side after resizing (the longer side keeps the aspect ratio).</summary>
    public int ResizeSize { get; init; } = 256;

    /// <summary>Height and width of the center crop fed to the model.</summary>
    public int CropSize { get; init; } = 224;

    /// <summary>Resampling filter.</summary>
    public Interpolation Interpolation { get; init; } = Interpolation.Bilinear;

    /// <summary>Pixels are scaled to [0, PixelScale] before normalisation: 1 for PyTorch (ToTensor), 255 for Caffe/CNTK.</summary>
    public double PixelScale { get; init; } = 1.0;

    /// <summary>Per-channel mean subtracted (in model channel order, in pixel-scale units).</summary>
    public IReadOnlyList<double> Mean { get; init; } = [0.485, 0.456, 0.406];

    /// <summary>Per-channel standard deviation divided by.</summary>
    public IReadOnlyList<double> Std { get; init; } = [0.229, 0.224, 0.225];

    /// <summary>Channel order of the model input.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>Channels the model takes (1 for grayscale models: RGB is converted by luminance).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>torchvision's ImageNet default: resize 256, crop 224, bilinear, ImageNet mean/std.</summary>
    public static Preprocessing ImageNet { get; } = new();

    /// <summary>The same transform at another crop size, keeping its crop ratio as timm keeps crop_pct (resize =
    /// ⌊crop × resize / crop⌋: torchvision's 256/224 gives 160 → 182; a model that resizes to its crop, such as
    /// resnet18_cntk, keeps doing so).</summary>
    public Preprocessing AtCropSize(int cropSize) => this with { CropSize = cropSize, ResizeSize = (int)Math.Floor(cropSize * (double)ResizeSize / CropSize + 1e-9) };

    /// <summary>timm's convention: crop size and crop_pct give the resize size, floor(crop / crop_pct).</summary>
    public static Preprocessing FromCropPct(int cropSize, double cropPct, Interpolation interpolation, IReadOnlyList<double> mean, IReadOnlyList<double> std) => new()
    {
        CropSize = cropSize,
        ResizeSize = (int)Math.Floor(cropSize / cropPct),
        Interpolation = interpolation,
        Mean = mean,
        Std = std,
    };

    /// <summary>Parses "bilinear", "bicubic", "nearest", or torchvision's "InterpolationMode.BILINEAR".</summary>
    public static Interpolation ParseInterpolation(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t.StartsWith("interpolationmode.", StringComparison.Ordinal)) t = t["interpolationmode.".Length..];
        return t switch
        {
            "bilinear" => Interpolation.Bilinear,
            "bicubic" => Interpolation.Bicubic,
            "nearest" => Interpolation.Nearest,
            _ => throw new InvalidOptionException("Interpolation", $"unknown interpolation '{text}' (bilinear, bicubic, nearest)"),
        };
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"resize {ResizeSize} ({Interpolation.ToString().ToLowerInvariant()}), crop {CropSize}, pixels in [0, {PixelScale}], mean [{string.Join(", ", Mean)}], std [{string.Join(", ", Std)}]{(ChannelOrder == ChannelOrder.Bgr ? ", BGR" : "")}{(Channels == 1 ? ", grayscale" : "")}");
}
