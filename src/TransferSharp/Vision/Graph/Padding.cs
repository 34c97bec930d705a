namespace TransferSharp.Vision.Graph;

/// <summary>How a convolution or pooling window is padded.</summary>
public enum PadKind
{
    /// <summary>Fixed amounts on each side (symmetric or not).</summary>
    Explicit,
    /// <summary>TensorFlow/Keras "SAME" (ONNX SAME_UPPER): output = ceil(in / stride), any odd extra on the end.</summary>
    SameUpper,
    /// <summary>ONNX SAME_LOWER: like SAME, any odd extra at the beginning.</summary>
    SameLower,
}

/// <summary>Padding of a 2-D window op: explicit per side, or computed from the input size ("same").</summary>
public sealed record PadSpec(PadKind Kind, int Top = 0, int Left = 0, int Bottom = 0, int Right = 0)
{
    /// <summary>No padding.</summary>
    public static readonly PadSpec None = new(PadKind.Explicit);

    /// <summary>TensorFlow "SAME" padding, resolved per input size.</summary>
    public static readonly PadSpec Same = new(PadKind.SameUpper);

    /// <summary>The same amount on every side.</summary>
    public static PadSpec Symmetric(int p) => new(PadKind.Explicit, p, p, p, p);

    /// <summary>Per-axis symmetric padding (height, width).</summary>
    public static PadSpec Symmetric(int ph, int pw) => new(PadKind.Explicit, ph, pw, ph, pw);

    /// <summary>True when no side is padded (for explicit padding).</summary>
    public bool IsZero => Kind == PadKind.Explicit && Top == 0 && Left == 0 && Bottom == 0 && Right == 0;

    /// <summary>The padding (top, left, bottom, right) for an input of the given size.</summary>
    public (int Top, int Left, int Bottom, int Right) Resolve(long h, long w, Size2 kernel, Size2 stride, Size2 dilation)
    {
        if (Kind == PadKind.Explicit) return (Top, Left, Bottom, Right);
        var (ph0, ph1) = SameAxis(h, kernel.H, stride.H, dilation.H, Kind == PadKind.SameLower);
        var (pw0, pw1) = SameAxis(w, kernel.W, stride.W, dilation.W, Kind == PadKind.SameLower);
        return (ph0, pw0, ph1, pw1);
    }

    private static (int Begin, int End) SameAxis(long size, int k, int s, int d, bool lower)
    {
        long outSize = (size + s - 1) / s;
        long total = Math.Max((outSize - 1) * s + (long)(k - 1) * d + 1 - size, 0);
        int small = (int)(total / 2), large = (int)(total - total / 2);
        return lower ? (large, small) : (small, large);
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        PadKind.SameUpper => "same",
        PadKind.SameLower => "same_lower",
        _ when Top == Bottom && Left == Right && Top == Left => Top.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ when Top == Bottom && Left == Right => $"({Top},{Left})",
        _ => $"(t{Top},l{Left},b{Bottom},r{Right})",
    };
}

/// <summary>A (height, width) pair: kernel sizes, strides, dilations.</summary>
public readonly record struct Size2(int H, int W)
{
    /// <summary>The same value on both axes.</summary>
    public static implicit operator Size2(int v) => new(v, v);

    /// <summary>As the long[] TorchSharp's functional ops take.</summary>
    public long[] ToArray() => [H, W];

    /// <inheritdoc />
    public override string ToString() => H == W ? H.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"({H},{W})";
}
