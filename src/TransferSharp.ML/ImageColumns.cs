using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.ML;

/// <summary>
/// The pipeline steps every TransferSharp estimator starts with: the image column (file paths, encoded bytes or
/// ML.NET's <see cref="MLImage"/>)
/// decoded and preprocessed exactly as the model's weights expect (<see cref="ImageTransforms"/>), into a float
/// column the exported ONNX graph reads. The preprocessing travels in the saved model as a constant column
/// (an <c>Expression</c> step), so the registered, stateless mapping below is all a fresh process needs.
/// </summary>
internal static class ImageColumns
{
    internal const string Image = "__ts_image";
    internal const string Spec = "__ts_preprocessing";
    internal const string Pixels = "__ts_pixels";
    /// <summary>A scalar taken from a vector or image column, for the <c>Expression</c> step to hang the constant on.</summary>
    internal const string ByteCount = "__ts_bytes";

    /// <summary>Every temporary column the preprocessing steps make.</summary>
    internal static readonly string[] Temporary = [Image, Spec, Pixels, ByteCount];

    /// <summary>The steps from <paramref name="inputColumn"/> to <see cref="Pixels"/>, in order. They are fitted one
    /// by one (<see cref="OnnxStep.Fit"/>), not as an <c>EstimatorChain</c>: a chain first checks its schema shapes, and
    /// ML.NET's <c>CustomMapping</c> compares image column types by reference there, so it refuses an image column that
    /// it accepts when fitted.</summary>
    public static IEstimator<ITransformer>[] Preprocess(TransformsCatalog transforms, string inputColumn, DataViewType inputType, Preprocessing preprocessing)
    {
        var constant = $"x => \"{Encode(preprocessing)}\"";
        var copy = transforms.CopyColumns(Image, inputColumn);
        if (inputType is TextDataViewType)
            return [copy, transforms.Expression(Spec, constant, Image), transforms.CustomMapping(new PathPixelsFactory().GetMapping(), PathPixelsFactory.Contract)];
        // An expression reads scalars only: it hangs the constant on the length of the bytes, or the image's width.
        if (inputType is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte)
            return [copy, transforms.CustomMapping(new ByteCountFactory().GetMapping(), ByteCountFactory.Contract), transforms.Expression(Spec, constant, ByteCount),
                transforms.CustomMapping(new BytesPixelsFactory().GetMapping(), BytesPixelsFactory.Contract)];
        if (inputType is ImageDataViewType)
            return [copy, transforms.CustomMapping(new ImageWidthFactory().GetMapping(), ImageWidthFactory.Contract), transforms.Expression(Spec, constant, ByteCount),
                transforms.CustomMapping(new MLImagePixelsFactory().GetMapping(), MLImagePixelsFactory.Contract)];
        throw new ArgumentException($"column '{inputColumn}' is {inputType}: an image column holds file paths (text), encoded image bytes "
            + "(a vector of bytes, as LoadRawImageBytes makes) or ML.NET images (LoadImages)");
    }

    /// <summary>The type of <paramref name="column"/> in a schema shape (for GetOutputSchema, before any data is seen).</summary>
    public static DataViewType TypeOf(SchemaShape schema, string column)
    {
        var c = schema.FirstOrDefault(x => x.Name == column);
        if (c.Name is null)
            throw new ArgumentException($"the input has no column '{column}' (columns: {string.Join(", ", schema.Select(x => x.Name))})");
        if (c.ItemType is TextDataViewType && c.Kind == SchemaShape.Column.VectorKind.Scalar) return TextDataViewType.Instance;
        if (c.ItemType == NumberDataViewType.Byte && c.Kind != SchemaShape.Column.VectorKind.Scalar) return new VectorDataViewType(NumberDataViewType.Byte);
        return c.Kind == SchemaShape.Column.VectorKind.Scalar ? c.ItemType : new VectorDataViewType((PrimitiveDataViewType)c.ItemType);
    }

    /// <summary>Preprocessing as a quote-free text (it sits inside an expression's string literal).</summary>
    internal static string Encode(Preprocessing p) => string.Join('|',
        p.ResizeSize.ToString(CultureInfo.InvariantCulture), p.CropSize.ToString(CultureInfo.InvariantCulture), p.Interpolation.ToString(),
        p.PixelScale.ToString("R", CultureInfo.InvariantCulture),
        string.Join(',', p.Mean.Select(v => v.ToString("R", CultureInfo.InvariantCulture))),
        string.Join(',', p.Std.Select(v => v.ToString("R", CultureInfo.InvariantCulture))),
        p.ChannelOrder.ToString(), p.Channels.ToString(CultureInfo.InvariantCulture));

    internal static Preprocessing Decode(string text)
    {
        var f = text.Split('|');
        if (f.Length != 8) throw new FormatException($"not a TransferSharp preprocessing record: '{text}'");
        static double[] Doubles(string s) => s.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return new Preprocessing
        {
            ResizeSize = int.Parse(f[0], CultureInfo.InvariantCulture),
            CropSize = int.Parse(f[1], CultureInfo.InvariantCulture),
            Interpolation = Enum.Parse<Interpolation>(f[2]),
            PixelScale = double.Parse(f[3], CultureInfo.InvariantCulture),
            Mean = Doubles(f[4]),
            Std = Doubles(f[5]),
            ChannelOrder = Enum.Parse<ChannelOrder>(f[6]),
            Channels = int.Parse(f[7], CultureInfo.InvariantCulture),
        };
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Preprocessing> Parsed = new();

    // ML.NET 5.0.1's image package is built against SkiaSharp 2.88, whose SKBitmap.GetPixelSpan() returned
    // ReadOnlySpan<byte>; SkiaSharp 4 (ours, the only one a process loads) returns Span<byte>, so MLImage.Pixels
    // throws MissingMethodException. The bitmap inside an MLImage is a SkiaSharp 4 SKBitmap all the same (ML.NET
    // decoded it with our SkiaSharp), so it is read here with SkiaSharp 4's own calls.
    private static readonly FieldInfo? MLImageBitmap = typeof(MLImage).GetField("_image", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>The RGB pixels of an ML.NET image (alpha dropped after un-premultiplying, as the decoder does).</summary>
    internal static RgbImage Rgb(MLImage? image)
    {
        const string Name = "an ML.NET image (MLImage)";
        if (image is null) throw new ImageDecodeException(Name, "the image column holds no image (a missing value)");
        if (MLImageBitmap?.GetValue(image) is not SKBitmap bitmap)
            throw new ImageDecodeException(Name, MLImageBitmap is null
                ? $"this version of Microsoft.ML.ImageAnalytics ({typeof(MLImage).Assembly.GetName().Version}) keeps its pixels where TransferSharp cannot read them; give the featurizer the image paths or bytes instead"
                : "the image was disposed");
        var info = new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var rgba = new SKBitmap(info);
        using var pixmap = bitmap.PeekPixels();
        if (pixmap is null || !pixmap.ReadPixels(info, rgba.GetPixels(), info.RowBytes, 0, 0))
            throw new ImageDecodeException(Name, $"cannot convert its pixels ({bitmap.ColorType}, {bitmap.AlphaType}) to RGB");
        var src = rgba.GetPixelSpan();
        var rgb = new byte[(long)info.Width * info.Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = src[i];
            rgb[j + 1] = src[i + 1];
            rgb[j + 2] = src[i + 2];
        }
        return new RgbImage(info.Width, info.Height, rgb);
    }

    internal static float[] Normalized(RgbImage image, string spec)
    {
        var p = Parsed.GetOrAdd(spec, Decode);
        var cropped = ImageTransforms.ResizeAndCrop(image, p);
        var values = new float[p.Channels * cropped.Width * cropped.Height];
        ImageTransforms.Normalize(cropped, p, values);
        return values;
    }
}

/// <summary>A row of a path image column with its preprocessing.</summary>
public sealed class PathImageRow
{
    /// <summary>The image file.</summary>
    [ColumnName(ImageColumns.Image)] public string Image { get; set; } = "";

    /// <summary>The encoded preprocessing.</summary>
    [ColumnName(ImageColumns.Spec)] public string Preprocessing { get; set; } = "";
}

/// <summary>A row of an encoded-bytes image column with its preprocessing.</summary>
public sealed class BytesImageRow
{
    /// <summary>The encoded image (JPEG, PNG, BMP, GIF, WebP).</summary>
    [ColumnName(ImageColumns.Image), VectorType] public byte[] Image { get; set; } = [];

    /// <summary>The encoded preprocessing.</summary>
    [ColumnName(ImageColumns.Spec)] public string Preprocessing { get; set; } = "";
}

/// <summary>An encoded image alone.</summary>
public sealed class BytesRow
{
    /// <summary>The encoded image.</summary>
    [ColumnName(ImageColumns.Image), VectorType] public byte[] Image { get; set; } = [];
}

/// <summary>The length of an encoded image.</summary>
public sealed class ByteCountRow
{
    /// <summary>Bytes.</summary>
    [ColumnName(ImageColumns.ByteCount)] public float Count { get; set; }
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class ByteCountFactory : CustomMappingFactory<BytesRow, ByteCountRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ImageByteCount";

    /// <inheritdoc />
    public override Action<BytesRow, ByteCountRow> GetMapping() => (row, output) => output.Count = row.Image.Length;
}

/// <summary>Marks an <see cref="MLImage"/> member as an image column of any size, the type LoadImages makes. ML.NET's
/// parameterless <c>[ImageType]</c> would be that, but it registers its type through the sized constructor, which
/// refuses 0×0 (Microsoft.ML.ImageAnalytics 5.0.1).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class AnySizeImageAttribute : DataViewTypeAttribute
{
    public override bool Equals(DataViewTypeAttribute other) => other is AnySizeImageAttribute;

    public override bool Equals(object? obj) => obj is AnySizeImageAttribute;

    public override int GetHashCode() => nameof(AnySizeImageAttribute).GetHashCode(StringComparison.Ordinal);

    public override void Register() => DataViewTypeManager.Register(new ImageDataViewType(), typeof(MLImage), this);
}

/// <summary>An ML.NET image alone.</summary>
public sealed class MLImageRow
{
    /// <summary>The image (LoadImages makes it).</summary>
    [ColumnName(ImageColumns.Image), AnySizeImage] public MLImage? Image { get; set; }
}

/// <summary>An ML.NET image with its preprocessing.</summary>
public sealed class MLImageSpecRow
{
    /// <summary>The image.</summary>
    [ColumnName(ImageColumns.Image), AnySizeImage] public MLImage? Image { get; set; }

    /// <summary>The encoded preprocessing.</summary>
    [ColumnName(ImageColumns.Spec)] public string Preprocessing { get; set; } = "";
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class ImageWidthFactory : CustomMappingFactory<MLImageRow, ByteCountRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ImageWidth";

    /// <inheritdoc />
    public override Action<MLImageRow, ByteCountRow> GetMapping() => (row, output) => output.Count = row.Image?.Width ?? 0;
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class MLImagePixelsFactory : CustomMappingFactory<MLImageSpecRow, PixelsRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ImagePixels.MLImage";

    /// <inheritdoc />
    public override Action<MLImageSpecRow, PixelsRow> GetMapping() =>
        (row, output) => output.Pixels = ImageColumns.Normalized(ImageColumns.Rgb(row.Image), row.Preprocessing);
}

/// <summary>The model's input values for one image (CHW floats).</summary>
public sealed class PixelsRow
{
    /// <summary>Normalised CHW values.</summary>
    [ColumnName(ImageColumns.Pixels), VectorType] public float[] Pixels { get; set; } = [];
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class PathPixelsFactory : CustomMappingFactory<PathImageRow, PixelsRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ImagePixels.Path";

    /// <inheritdoc />
    public override Action<PathImageRow, PixelsRow> GetMapping() =>
        (row, output) => output.Pixels = ImageColumns.Normalized(ImageDecoder.Decode(row.Image), row.Preprocessing);
}

/// <summary>Registered (by contract name) so that a saved pipeline reloads in a fresh process.</summary>
[CustomMappingFactoryAttribute(Contract)]
public sealed class BytesPixelsFactory : CustomMappingFactory<BytesImageRow, PixelsRow>
{
    /// <summary>The contract name written into saved models.</summary>
    public const string Contract = "TransferSharp.ImagePixels.Bytes";

    /// <inheritdoc />
    public override Action<BytesImageRow, PixelsRow> GetMapping() =>
        (row, output) => output.Pixels = ImageColumns.Normalized(ImageDecoder.Decode(row.Image, "image bytes"), row.Preprocessing);
}
