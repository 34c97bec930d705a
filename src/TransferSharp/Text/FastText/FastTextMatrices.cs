namespace TransferSharp.Text.FastText;

/// <summary>fastText's matrix interface, as far as inference needs it. The arithmetic is fastText's own,
/// element by element in float32 and in the same order, so results agree to the last bit where it matters.</summary>
internal interface IFastTextMatrix : IDisposable
{
    long Rows { get; }
    int Cols { get; }

    /// <summary>x += row.</summary>
    void AddRowTo(Span<float> x, int row);

    /// <summary>Σ x[j]·row[j], summed in order.</summary>
    float DotRow(ReadOnlySpan<float> x, int row);
}

/// <summary>A plain float32 matrix (in native memory or served from the mapped model file).</summary>
internal sealed unsafe class DenseFastTextMatrix(VectorStorage storage) : IFastTextMatrix
{
    public VectorStorage Storage { get; } = storage;
    public long Rows => Storage.Rows;
    public int Cols => Storage.Dim;

    public void AddRowTo(Span<float> x, int row)
    {
        float* r = (float*)Storage.RowPointer(row);
        for (int j = 0; j < x.Length; j++) x[j] += r[j];
    }

    public float DotRow(ReadOnlySpan<float> x, int row)
    {
        float* r = (float*)Storage.RowPointer(row);
        float d = 0;
        for (int j = 0; j < x.Length; j++) d += r[j] * x[j];
        return d;
    }

    public void Dispose() => Storage.Dispose();
}

/// <summary>fastText's product quantizer: per sub-vector of <see cref="DSub"/> dimensions (the last one may be
/// shorter) 256 centroids; a row is one byte per sub-vector.</summary>
internal sealed class ProductQuantizer
{
    public const int CentroidsPerSubspace = 256;

    public required int Dim { get; init; }
    public required int NSubq { get; init; }
    public required int DSub { get; init; }
    public required int LastDSub { get; init; }
    public required float[] Centroids { get; init; }

    public int CentroidOffset(int m, byte i) =>
        m == NSubq - 1 ? m * CentroidsPerSubspace * DSub + i * LastDSub : (m * CentroidsPerSubspace + i) * DSub;

    public void AddCode(Span<float> x, ReadOnlySpan<byte> codes, long t, float alpha)
    {
        int d = DSub;
        var code = codes.Slice((int)(NSubq * t), NSubq);
        for (int m = 0; m < NSubq; m++)
        {
            int c = CentroidOffset(m, code[m]);
            if (m == NSubq - 1) d = LastDSub;
            for (int n = 0; n < d; n++) x[m * DSub + n] += alpha * Centroids[c + n];
        }
    }

    public float MulCode(ReadOnlySpan<float> x, ReadOnlySpan<byte> codes, long t, float alpha)
    {
        float res = 0;
        int d = DSub;
        var code = codes.Slice((int)(NSubq * t), NSubq);
        for (int m = 0; m < NSubq; m++)
        {
            int c = CentroidOffset(m, code[m]);
            if (m == NSubq - 1) d = LastDSub;
            for (int n = 0; n < d; n++) res += x[m * DSub + n] * Centroids[c + n];
        }
        return res * alpha;
    }
}

/// <summary>A product-quantized matrix (.ftz): codes per row, optionally with separately quantized row norms.</summary>
internal sealed class QuantFastTextMatrix : IFastTextMatrix
{
    public required long Rows { get; init; }
    public required int Cols { get; init; }
    public required byte[] Codes { get; init; }
    public required ProductQuantizer Quantizer { get; init; }
    public byte[]? NormCodes { get; init; }
    public ProductQuantizer? NormQuantizer { get; init; }

    private float Norm(int row) => NormCodes is null ? 1f : NormQuantizer!.Centroids[NormQuantizer.CentroidOffset(0, NormCodes[row])];

    public void AddRowTo(Span<float> x, int row) => Quantizer.AddCode(x, Codes, row, Norm(row));

    public float DotRow(ReadOnlySpan<float> x, int row) => Quantizer.MulCode(x, Codes, row, Norm(row));

    public void Dispose() { }
}
