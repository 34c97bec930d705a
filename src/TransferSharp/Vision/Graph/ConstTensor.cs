namespace TransferSharp.Vision.Graph;

/// <summary>
/// A constant known at import time: an initializer, a Constant node, or a folded shape computation.
/// Floating tensors keep float32 values; integer and boolean ones keep int64. <see cref="BatchMarks"/>
/// flags int64 elements that are the batch size (they came from a Shape of a batched value), so a
/// folded Reshape target can keep the batch dimension dynamic.
/// </summary>
internal sealed class ConstTensor
{
    public ConstTensor(long[] shape, float[] floats) { Shape = shape; Floats = floats; }

    public ConstTensor(long[] shape, long[] ints, bool[]? batchMarks = null)
    {
        Shape = shape;
        Ints = ints;
        BatchMarks = batchMarks;
    }

    public long[] Shape { get; }
    public float[]? Floats { get; }
    public long[]? Ints { get; }
    public bool[]? BatchMarks { get; }
    public bool IsFloat => Floats is not null;
    public long Count => Floats?.Length ?? Ints!.Length;

    public double this[long i] => Floats is { } f ? f[i] : Ints![i];

    public bool IsMarked(long i) => BatchMarks is { } m && m[i];

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
