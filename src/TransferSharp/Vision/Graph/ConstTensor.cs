namespace TransferSharp.Vision.Graph;

/// <summary>
/// A constant known at import time: an initializer, a Constant node, or a folded shape computation.
/// Floating tensors keep float32 values; integer and boolean ones keep int64. <see cref="Marks"/>
/// flags int64 elements that are the batch size or a text model's sequence length (they came from a Shape of a
/// value), so a folded Reshape target can keep those dimensions dynamic. <see cref="SequenceAxis"/> marks a constant
/// cut to the sequence length along that axis (BERT's position ids sliced to the input's length).
/// </summary>
internal sealed class ConstTensor
{
    public ConstTensor(long[] shape, float[] floats) { Shape = shape; Floats = floats; }

    public ConstTensor(long[] shape, long[] ints, DimMark[]? marks = null)
    {
        Shape = shape;
        Ints = ints;
        Marks = marks;
    }

    public long[] Shape { get; }
    public float[]? Floats { get; }
    public long[]? Ints { get; }
    public DimMark[]? Marks { get; }
    public bool IsFloat => Floats is not null;
    public long Count => Floats?.Length ?? Ints!.Length;

    /// <summary>The axis along which this constant was cut to the traced sequence length, or null.</summary>
    public int? SequenceAxis { get; init; }

    public double this[long i] => Floats is { } f ? f[i] : Ints![i];

    /// <summary>Whether element <paramref name="i"/> stands for a dynamic dimension (batch or sequence).</summary>
    public bool IsMarked(long i) => MarkOf(i) != DimMark.None;

    /// <summary>Which dynamic dimension element <paramref name="i"/> stands for.</summary>
    public DimMark MarkOf(long i) => Marks is { } m ? m[i] : DimMark.None;

    public float[] AsFloats() => Floats ?? Ints!.Select(v => (float)v).ToArray();

    public long[] AsInts() => Ints ?? Floats!.Select(v => (long)v).ToArray();

    public static ConstTensor Scalar(long v) => new([], [v]);

    /// <summary>A 2-D float matrix [rows, cols] transposed (ONNX Gemm/MatMul weights are [in, out], Linear's are [out, in]).</summary>
    public float[] Transposed2D()
    {
        var m = AsFloats();
        long rows = Shape[0], cols = Shape[1];
        var t = new float[m.Length];
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++)
                t[c * rows + r] = m[r * cols + c];
        return t;
    }
}

/// <summary>Which dynamic dimension of the input a folded shape element stands for.</summary>
internal enum DimMark : byte
{
    /// <summary>A fixed number.</summary>
    None,
    /// <summary>The batch size.</summary>
    Batch,
    /// <summary>A text model's sequence length (the token inputs' dimension 1).</summary>
    Sequence,
}
