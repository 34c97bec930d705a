using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.ML;

/// <summary>
/// The pipeline steps every TransferSharp estimator starts with: the image column (file paths or encoded bytes)
/// decoded and preprocessed exactly as the model's weights expect (<see cref="ImageTransforms"/>), into a float
/// column the exported ONNX graph reads. The preprocessing travels in the saved model as a constant column
/// (an <c>Expression</c> step), so the registered, stateless mapping below is all a fresh process needs.
/// </summary>
internal static class ImageColumns
{
    internal const string Image = "__ts_image";
    internal const string Spec = "__ts_preprocessing";
    internal const string Pixels = "__ts_pixels";
    internal const string ByteCount = "__ts_bytes";

    /// <summary>Every temporary column the preprocessing steps make.</summary>
    internal static readonly string[] Temporary = [Image, Spec, Pixels, ByteCount];

    /// <summary>The steps from <paramref name="inputColumn"/> to <see cref="Pixels"/>.</summary>
    public static IEstimator<ITransformer> Preprocess(TransformsCatalog transforms, string inputColumn, DataViewType inputType, Preprocessing preprocessing)
    {
        var constant = $"x => \"{Encode(preprocessing)}\"";
        var copy = transforms.CopyColumns(Image, inputColumn);
        if (inputType is TextDataViewType)
            return copy.Append(transforms.Expression(Spec, constant, Image))
                .Append(transforms.CustomMapping(new PathPixelsFactory().GetMapping(), PathPixelsFactory.Contract));
        if (inputType is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte)
            // An expression reads scalars only: it hangs the constant on the image's length.
            return copy.Append(transforms.CustomMapping(new ByteCountFactory().GetMapping(), ByteCountFactory.Contract))
                .Append(transforms.Expression(Spec, constant, ByteCount))
                .Append(transforms.CustomMapping(new BytesPixelsFactory().GetMapping(), BytesPixelsFactory.Contract));
        throw new ArgumentException($"column '{inputColumn}' is {inputType}: an image column holds file paths (text) or encoded image bytes "
            + "(a vector of bytes, as LoadRawImageBytes makes)");
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
