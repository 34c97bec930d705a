using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace TransferSharp.Text;

/// <summary>How the vectors of a <see cref="WordVectors"/> are stored in memory.</summary>
public enum VectorPrecision
{
    /// <summary>4-byte IEEE floats, exactly as the files hold them (the default).</summary>
    Float32,

    /// <summary>2-byte IEEE half floats: half the memory; values are rounded to about 3 significant digits,
    /// which changes similarities in the 3rd-4th decimal. Queries compute in float32.</summary>
    Float16,
}

/// <summary>
/// A rows × dim matrix of float32 or float16 values in native memory (aligned, outside the GC heap, no
/// 2 GB array limit) or in a read-only memory-mapped file. Rows are contiguous, or — for a mapped word2vec
/// binary, where each vector sits after its word — found through a table of byte offsets.
/// </summary>
internal sealed unsafe class VectorStorage : IDisposable
{
    private byte* _base;
    private long[]? _rowOffsets;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private readonly bool _ownsNative;
    private readonly long _allocatedBytes;

    private VectorStorage(byte* basePtr, int rows, int dim, VectorPrecision precision, bool ownsNative,
        MemoryMappedFile? map, MemoryMappedViewAccessor? view, long[]? rowOffsets)
    {
        _base = basePtr;
        Rows = rows;
        Dim = dim;
        Precision = precision;
        _ownsNative = ownsNative;
        _map = map;
        _view = view;
        _rowOffsets = rowOffsets;
        _allocatedBytes = ownsNative ? Math.Max(1, (long)rows * dim * (precision == VectorPrecision.Float32 ? 4 : 2)) : 0;
    }

    // Only native memory is freed here: the mapping's own handles finalize themselves.
    ~VectorStorage() => Release(disposing: false);

    public int Rows { get; private set; }
    public int Dim { get; }
    public VectorPrecision Precision { get; }
    public int ElementSize => Precision == VectorPrecision.Float32 ? 4 : 2;
    public long RowBytes => (long)Dim * ElementSize;
    public bool IsMapped => _map is not null;
    public long Bytes => Rows * RowBytes;

    /// <summary>Allocates rows × dim uninitialised values (callers fill every row).</summary>
    public static VectorStorage Allocate(int rows, int dim, VectorPrecision precision)
    {
        if (rows < 0 || dim <= 0) throw new ArgumentOutOfRangeException(nameof(rows), $"cannot allocate a {rows} × {dim} matrix");
        long bytes = Math.Max(1, (long)rows * dim * (precision == VectorPrecision.Float32 ? 4 : 2));
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        if (p == null) throw new OutOfMemoryException($"cannot allocate {bytes} bytes for a {rows} × {dim} matrix");
        GC.AddMemoryPressure(bytes);
        return new VectorStorage(p, rows, dim, precision, ownsNative: true, null, null, null);
    }

    /// <summary>Serves the rows straight from a read-only mapping of a file; takes ownership of the mapping.</summary>
    public static VectorStorage FromMapping(MemoryMappedFile map, MemoryMappedViewAccessor view, long dataOffset, int rows, int dim,
        VectorPrecision precision, long[]? rowOffsets)
    {
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return new VectorStorage(p + view.PointerOffset + dataOffset, rows, dim, precision, ownsNative: false, map, view, rowOffsets);
    }

    public byte* RowPointer(int row)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + (_rowOffsets is null ? row * RowBytes : _rowOffsets[row]);
    }

    public ReadOnlySpan<float> RowFloat32(int row) =>
        Precision == VectorPrecision.Float32 ? new ReadOnlySpan<float>(RowPointer(row), Dim)
        : throw new InvalidOperationException("the vectors are stored as float16; copy rows with CopyRow");

    public void CopyRow(int row, Span<float> destination)
    {
        if (Precision == VectorPrecision.Float32) new ReadOnlySpan<float>(RowPointer(row), Dim).CopyTo(destination);
        else TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(RowPointer(row), Dim), destination[..Dim]);
    }

    public void SetRow(int row, ReadOnlySpan<float> values)
    {
        if (IsMapped) throw new InvalidOperationException("memory-mapped vectors are read-only");
        if (Precision == VectorPrecision.Float32) values[..Dim].CopyTo(new Span<float>(RowPointer(row), Dim));
        else TensorPrimitives.ConvertToHalf(values[..Dim], new Span<Half>(RowPointer(row), Dim));
    }

    public float Dot(int row, ReadOnlySpan<float> query)
    {
        if (Precision == VectorPrecision.Float32)
        {
            fixed (float* q = query) return Kernels.Dot((float*)RowPointer(row), q, Dim);
        }
        Span<float> buffer = stackalloc float[256];
        var half = new ReadOnlySpan<Half>(RowPointer(row), Dim);
        float sum = 0;
        for (int start = 0; start < Dim; start += buffer.Length)
        {
            int n = Math.Min(buffer.Length, Dim - start);
            TensorPrimitives.ConvertToSingle(half.Slice(start, n), buffer[..n]);
            sum += TensorPrimitives.Dot(buffer[..n], query.Slice(start, n));
        }
        return sum;
    }

    public float Norm(int row)
    {
        if (Precision == VectorPrecision.Float32)
        {
            float* p = (float*)RowPointer(row);
            return MathF.Sqrt(Kernels.Dot(p, p, Dim));
        }
        Span<float> buffer = Dim <= 1024 ? stackalloc float[Dim] : new float[Dim];
        CopyRow(row, buffer);
        return TensorPrimitives.Norm(buffer);
    }

    /// <summary>Keeps only the given rows (ascending), moving them to the front; the rest are forgotten.</summary>
    public void KeepRows(IReadOnlyList<int> keep)
    {
        if (_rowOffsets is not null)
        {
            var offsets = new long[keep.Count];
            for (int i = 0; i < keep.Count; i++) offsets[i] = _rowOffsets[keep[i]];
            _rowOffsets = offsets;
        }
        else
        {
            if (IsMapped && keep.Where((r, i) => r != i).Any()) throw new InvalidOperationException("memory-mapped vectors are read-only");
            for (int i = 0; i < keep.Count; i++)
            {
                if (keep[i] == i) continue;
                Buffer.MemoryCopy(RowPointer(keep[i]), RowPointer(i), RowBytes, RowBytes);
            }
        }
        Rows = keep.Count;
    }

    /// <summary>A new native copy of the first <paramref name="rows"/> rows, optionally converting precision.</summary>
    public VectorStorage CopyFirst(int rows, VectorPrecision precision)
    {
        rows = Math.Min(rows, Rows);
        var copy = Allocate(rows, Dim, precision);
        if (precision == Precision && _rowOffsets is null)
        {
            Buffer.MemoryCopy(RowPointer(0), copy.RowPointer(0), rows * RowBytes, rows * RowBytes);
            return copy;
        }
        var row = new float[Dim];
        for (int i = 0; i < rows; i++)
        {
            CopyRow(i, row);
            copy.SetRow(i, row);
        }
        return copy;
    }

    /// <summary>Scales every row to unit length in place (zero rows stay zero).</summary>
    public void NormalizeRowsInPlace()
    {
        if (IsMapped) throw new InvalidOperationException("memory-mapped vectors are read-only; load without memory mapping to normalise in place");
        var row = new float[Dim];
        for (int i = 0; i < Rows; i++)
        {
            CopyRow(i, row);
            float n = TensorPrimitives.Norm(row);
            if (n > 0) TensorPrimitives.Multiply(row, 1f / n, row);
            SetRow(i, row);
        }
    }

    private void Release(bool disposing)
    {
        if (_base == null) return;
        if (_ownsNative)
        {
            NativeMemory.AlignedFree(_base);
            GC.RemoveMemoryPressure(_allocatedBytes);
        }
        else if (disposing)
        {
            _view?.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _base = null;
    }

    public void Dispose()
    {
        Release(disposing: true);
        _view?.Dispose();
        _map?.Dispose();
        _view = null;
        _map = null;
        GC.SuppressFinalize(this);
    }
}
