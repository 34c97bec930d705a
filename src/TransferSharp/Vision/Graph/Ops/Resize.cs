using System.Globalization;
using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>How <see cref="ResizeOp"/> reads between input samples.</summary>
public enum ResizeMode
{
    /// <summary>The nearest input sample, rounded as <see cref="NearestRounding"/> says.</summary>
    Nearest,
    /// <summary>Linear interpolation along each resized axis (bilinear on images), edge samples repeated outside.</summary>
    Linear,
}

/// <summary>ONNX's coordinate_transformation_mode: where output index x falls in the input (scale = output ÷ input length).</summary>
public enum ResizeCoordinates
{
    /// <summary>(x + 0.5) / scale − 0.5 (ONNX's default; PyTorch's align_corners=False).</summary>
    HalfPixel,
    /// <summary>half_pixel about the centre of the input when the output length is rounded (ONNX opset 19).</summary>
    HalfPixelSymmetric,
    /// <summary>half_pixel, but 0 when the output length is 1.</summary>
    PytorchHalfPixel,
    /// <summary>x · (input − 1) / (output − 1) (PyTorch's align_corners=True).</summary>
    AlignCorners,
    /// <summary>x / scale (PyTorch's nearest, Upsample).</summary>
    Asymmetric,
    /// <summary>(x + 0.5) / scale (TensorFlow 1's nearest resize).</summary>
    TfHalfPixelForNn,
}

/// <summary>ONNX's nearest_mode: how a fractional input position becomes an index.</summary>
public enum NearestRounding
{
    /// <summary>Round, halves down (ONNX's default).</summary>
    RoundPreferFloor,
    /// <summary>Round, halves up.</summary>
    RoundPreferCeil,
    /// <summary>Down.</summary>
    Floor,
    /// <summary>Up.</summary>
    Ceil,
}

/// <summary>One resized axis: the output length is <paramref name="Size"/> when it is positive, else ⌊input ·
/// <paramref name="Scale"/>⌋ (ONNX's sizes and scales inputs).</summary>
public sealed record ResizeAxis(int Axis, double Scale, long Size);

/// <summary>
/// Resampling of any axes but the batch by nearest or linear interpolation, with every ONNX coordinate transformation
/// (ONNX Resize and Upsample; PyTorch's interpolate and nn.Upsample export as it). Separable: one axis after another,
/// which for linear interpolation is exactly bilinear (trilinear) and for nearest the same sample.
/// </summary>
public sealed record ResizeOp(ResizeMode Mode, ResizeCoordinates Coordinates, NearestRounding Rounding, IReadOnlyList<ResizeAxis> Axes) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        foreach (var a in Axes)
        {
            if (a.Axis <= 0 || a.Axis >= o.Length) throw Bad($"Resize: axis {a.Axis} is the batch or outside a rank-{o.Length} input");
            o[a.Axis] = OutputLength(o[a.Axis], a);
            if (o[a.Axis] <= 0) throw Bad($"Resize: axis {a.Axis} of length {inputs[0][a.Axis]} would become {o[a.Axis]}");
        }
        return o;
    }

    private static long OutputLength(long input, ResizeAxis a) => a.Size > 0 ? a.Size : (long)Math.Floor(input * a.Scale);

    /// <summary>The input position output index <paramref name="x"/> reads, per ONNX's coordinate transformation. As in
    /// ONNX's reference, the resized length in the formulas is input · scale before rounding when scales are given.</summary>
    internal double Source(long x, long input, long output, ResizeAxis a)
    {
        double scale = a.Size > 0 ? (double)output / input : a.Scale;
        double resized = a.Size > 0 ? output : input * a.Scale;
        return Coordinates switch
        {
            ResizeCoordinates.HalfPixel => (x + 0.5) / scale - 0.5,
            ResizeCoordinates.PytorchHalfPixel => resized > 1 ? (x + 0.5) / scale - 0.5 : 0,
            ResizeCoordinates.AlignCorners => resized == 1 ? 0 : x * (double)(input - 1) / (resized - 1),
            ResizeCoordinates.Asymmetric => x / scale,
            ResizeCoordinates.TfHalfPixelForNn => (x + 0.5) / scale,
            _ => input / 2.0 * (1 - output / resized) + (x + 0.5) / scale - 0.5,
        };
    }

    private long Nearest(double position) => Rounding switch
    {
        NearestRounding.RoundPreferFloor => (long)Math.Ceiling(position - 0.5),
        NearestRounding.RoundPreferCeil => (long)Math.Floor(position + 0.5),
        NearestRounding.Floor => (long)Math.Floor(position),
        _ => (long)Math.Ceiling(position),
    };

    /// <inheritdoc />
    public override long Macs(IReadOnlyList<long[]> inputs, long[] output) => Mode == ResizeMode.Linear ? Numel(output) * Axes.Count : 0;

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        if (Coordinates == ResizeCoordinates.HalfPixelSymmetric && onnx.Opset < 19)
            throw new NotSupportedException($"Resize with half_pixel_symmetric coordinates needs opset 19 (exporting opset {onnx.Opset})");
        var name = onnx.Node.Name;
        int rank = onnx.InputShapes[0].Length;
        string scales = "", sizes = "";
        if (Axes.All(a => a.Size <= 0))
        {
            var s = Enumerable.Repeat(1f, rank).ToArray();
            foreach (var a in Axes) s[a.Axis] = (float)a.Scale;
            scales = onnx.Floats(name + ".scales", [rank], s);
        }
        else
        {
            // Fixed lengths for every axis but the batch, which the file reads from the input as it runs.
            var shape = onnx.Emit("Shape", [onnx.Inputs[0]], onnx.Fresh(name + "_shape"));
            var batch = onnx.Emit("Slice", [shape, onnx.Ints(name + ".batch_start", 0), onnx.Ints(name + ".batch_end", 1)], onnx.Fresh(name + "_batch"));
            sizes = onnx.Emit("Concat", [batch, onnx.Ints(name + ".sizes", onnx.OutputShape[1..])], onnx.Fresh(name + "_sizes"), Attr("axis", 0));
        }
        string mode = OnnxName(Mode), coordinates = OnnxName(Coordinates), rounding = OnnxName(Rounding);
        List<string> inputs = sizes.Length > 0 ? [onnx.Inputs[0], "", "", sizes] : [onnx.Inputs[0], "", scales];
        onnx.Out("Resize", inputs, Attr("mode", mode), Attr("coordinate_transformation_mode", coordinates), Attr("nearest_mode", rounding));
    }

    /// <summary>The ONNX operators imported as this op: Resize (opset 10 and Upsample read as PyTorch wrote them then:
    /// asymmetric coordinates, nearest rounding down) with scales or sizes that are constants.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Resize", ImportOnnx), ("Upsample", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        bool legacy = onnx.OpType == "Upsample" || onnx.Opset < 11;
        var modeName = onnx.String("mode") ?? "nearest";
        var mode = FromOnnxName<ResizeMode>(modeName == "bilinear" ? "linear" : modeName)
            ?? throw onnx.Unsupported($"mode '{modeName}' (nearest and linear are supported)");
        var coordinatesName = legacy ? "asymmetric" : onnx.String("coordinate_transformation_mode") ?? "half_pixel";
        var coordinates = FromOnnxName<ResizeCoordinates>(coordinatesName)
            ?? throw onnx.Unsupported($"coordinate_transformation_mode '{coordinatesName}'");
        var roundingName = legacy ? "floor" : onnx.String("nearest_mode") ?? "round_prefer_floor";
        var rounding = FromOnnxName<NearestRounding>(roundingName) ?? throw onnx.Unsupported($"nearest_mode '{roundingName}'");
        if ((onnx.String("keep_aspect_ratio_policy") ?? "stretch") is var policy && policy != "stretch")
            throw onnx.Unsupported($"keep_aspect_ratio_policy '{policy}' (only stretch)");

        int rank = x.Shape.Length;
        var axes = (onnx.Ints("axes") ?? Enumerable.Range(0, rank).Select(i => (long)i).ToArray())
            .Select(a => OnnxImportContext.Norm(a, rank)).ToArray();
        if (axes.Any(a => a < 0 || a >= rank) || axes.Distinct().Count() != axes.Length)
            throw onnx.Malformed($"axes [{string.Join(",", onnx.Ints("axes")!)}] do not name distinct axes of a rank-{rank} input");
        double[]? scales = null;
        ConstTensor? sizes = null;
        if (onnx.OpType == "Upsample" && onnx.Opset < 9)
            scales = onnx.FloatList("scales") ?? throw onnx.Malformed("Upsample without scales");
        else
        {
            int scalesInput = legacy ? 1 : 2;
            if (onnx.Has(scalesInput) && onnx.Constant(scalesInput, "scales") is { Count: > 0 } s) scales = s.AsFloats().Select(v => (double)v).ToArray();
            if (!legacy && onnx.Has(3) && onnx.Constant(3, "sizes") is { Count: > 0 } z) sizes = z;
        }
        if ((scales is null) == (sizes is null)) throw onnx.Malformed("give exactly one of scales and sizes");
        int given = scales?.Length ?? (int)sizes!.Count;
        if (given != axes.Length) throw onnx.Malformed($"{(scales is null ? "sizes" : "scales")} has {given} elements for {axes.Length} axes");
        if (onnx.Int("antialias", 0) != 0 && scales is not null && scales.Any(v => v < 1)
            || onnx.Int("antialias", 0) != 0 && sizes is not null && axes.Select((a, k) => sizes.AsInts()[k] < x.Shape[a]).Any(b => b))
            throw onnx.Unsupported("antialias when downsampling");

        var resized = new List<ResizeAxis>();
        for (int k = 0; k < axes.Length; k++)
        {
            int a = axes[k];
            if (a == 0)
            {
                // The batch is never resampled: a scale of 1, a size read from the input's shape, or the file's fixed batch.
                bool keeps = scales is not null ? scales[k] == 1 : sizes!.IsMarked(k) || sizes.AsInts()[k] == x.Shape[0];
                if (!keeps) throw onnx.Unsupported("resizing the batch dimension");
                continue;
            }
            if (scales is not null)
            {
                if (!(scales[k] > 0) || double.IsInfinity(scales[k])) throw onnx.Malformed($"scale {scales[k].ToString(CultureInfo.InvariantCulture)} on axis {a}");
                // Scale 1 leaves an axis as it is, except tf_half_pixel_for_nn, which shifts by half a sample.
                if (scales[k] == 1 && coordinates != ResizeCoordinates.TfHalfPixelForNn) continue;
                resized.Add(new ResizeAxis(a, scales[k], 0));
            }
            else
            {
                long size = sizes!.AsInts()[k];
                if (size <= 0) throw onnx.Malformed($"size {size} on axis {a}");
                resized.Add(new ResizeAxis(a, 0, size));
            }
        }
        if (resized.Count == 0)
        {
            onnx.Alias();
            return;
        }
        onnx.Out(new ResizeOp(mode, coordinates, rounding, resized));
    }

    /// <summary>ONNX spells the enums' members in snake case (HalfPixel: "half_pixel", RoundPreferFloor: "round_prefer_floor").</summary>
    private static string OnnxName<T>(T value) where T : struct, Enum =>
        System.Text.RegularExpressions.Regex.Replace(value.ToString(), "(?<!^)([A-Z])", "_$1").ToLowerInvariant();

    private static T? FromOnnxName<T>(string name) where T : struct, Enum =>
        Enum.GetValues<T>().Where(v => OnnxName(v) == name).Select(v => (T?)v).FirstOrDefault();

    /// <inheritdoc />
    public override Layer CreateLayer() => new ResizeLayer(this);

    /// <inheritdoc />
    public bool Equals(ResizeOp? other) =>
        other is not null && Mode == other.Mode && Coordinates == other.Coordinates && Rounding == other.Rounding && Axes.SequenceEqual(other.Axes);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Mode, Coordinates, Rounding, Axes.Count);

    /// <inheritdoc />
    public override string Describe() =>
        $"{Mode.ToString().ToLowerInvariant()}, {Coordinates}, " + string.Join(" ", Axes.Select(a =>
            a.Size > 0 ? $"axis {a.Axis}→{a.Size}" : $"axis {a.Axis}×{a.Scale.ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>Resamples axis after axis: index tables computed on the host for the lengths met, gathers on the device.</summary>
    private sealed class ResizeLayer(ResizeOp op) : Layer(op)
    {
        public override Tensor Forward(IReadOnlyList<Tensor> inputs)
        {
            var y = inputs[0].alias();
            foreach (var a in op.Axes)
            {
                long input = y.shape[a.Axis], output = OutputLength(input, a);
                var next = op.Mode == ResizeMode.Nearest ? Nearest(y, a, input, output) : Linear(y, a, input, output);
                y.Dispose();
                y = next;
            }
            return y;
        }

        private Tensor Nearest(Tensor x, ResizeAxis a, long input, long output)
        {
            var index = new long[output];
            for (long i = 0; i < output; i++) index[i] = Math.Clamp(op.Nearest(op.Source(i, input, output, a)), 0, input - 1);
            using var idx = tensor(index, device: x.device);
            return x.index_select(a.Axis, idx);
        }

        private Tensor Linear(Tensor x, ResizeAxis a, long input, long output)
        {
            var lo = new long[output];
            var hi = new long[output];
            var w = new float[output];
            for (long i = 0; i < output; i++)
            {
                double p = op.Source(i, input, output, a);
                long f = (long)Math.Floor(p);
                // Outside the input the edge sample repeats (ONNX's reference pads with the edge).
                lo[i] = Math.Clamp(f, 0, input - 1);
                hi[i] = Math.Clamp(f + 1, 0, input - 1);
                w[i] = (float)(p - f);
            }
            var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
            shape[a.Axis] = output;
            using var scope = NewDisposeScope();
            var lower = x.index_select(a.Axis, tensor(lo, device: x.device));
            var upper = x.index_select(a.Axis, tensor(hi, device: x.device));
            var weight = tensor(w, device: x.device).to_type(x.dtype).reshape(shape);
            return (lower + (upper - lower) * weight).MoveToOuterDisposeScope();
        }
    }
}
