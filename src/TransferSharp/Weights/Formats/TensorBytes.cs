using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>
/// Moves raw little-endian bytes between files and tensor memory with a single copy. TorchSharp
/// exposes a tensor's memory as a <see cref="Span{T}"/>, whose length is an int, so large tensors
/// are copied in chunks through 1-D views.
/// </summary>
internal static class TensorBytes
{
    private const long ChunkBytes = 1L << 28;

    public static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("checkpoint readers assume a little-endian machine");
    }

    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"dtype {dtype} is not supported in checkpoints"),
    };

    /// <summary>Element count of a shape, or -1 when it overflows a long or has a negative dimension.</summary>
    public static long Numel(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) return -1;
            if (d != 0 && n > long.MaxValue / d) return -1;
            n *= d;
        }
        return n;
    }

    /// <summary>Visits the memory of a contiguous CPU tensor in chunks, in order.</summary>
    public static void ForEachChunk(Tensor tensor, SpanAction action)
    {
        long n = tensor.numel();
        if (n == 0) return;
        int elem = ElementSize(tensor.dtype);
        long per = Math.Max(1, ChunkBytes / elem);
        using var flat = tensor.view(-1);
        for (long start = 0; start < n; start += per)
        {
            long count = Math.Min(per, n - start);
            using var part = flat.narrow(0, start, count);
            action(part.bytes);
        }
    }

    public delegate void SpanAction(Span<byte> chunk);

    /// <summary>Fills a fresh contiguous tensor from memory at <paramref name="source"/>.</summary>
    public static unsafe void CopyFrom(Tensor destination, byte* source, long length)
    {
        long expected = destination.numel() * ElementSize(destination.dtype);
        if (expected != length) throw new InvalidOperationException($"byte count {length} does not match tensor size {expected}");
        long offset = 0;
        ForEachChunk(destination, chunk =>
        {
            new ReadOnlySpan<byte>(source + offset, chunk.Length).CopyTo(chunk);
            offset += chunk.Length;
        });
    }

    /// <summary>Fills a fresh contiguous tensor from the next bytes of a stream.</summary>
    public static void ReadFrom(Tensor destination, Stream stream, string file, string what)
    {
        ForEachChunk(destination, chunk =>
        {
            try
            {
                stream.ReadExactly(chunk);
            }
            catch (EndOfStreamException e)
            {
                throw new CheckpointFormatException(file, $"{what} is truncated: the file ends before its {destination.numel() * ElementSize(destination.dtype)} bytes", e);
            }
        });
    }

    /// <summary>Writes a tensor's bytes (made contiguous and CPU) to a stream.</summary>
    public static void WriteTo(Tensor tensor, Stream stream)
    {
        using var cpu = tensor.device_type == TorchSharp.DeviceType.CPU ? tensor.alias() : tensor.cpu();
        using var contiguous = cpu.contiguous();
        ForEachChunk(contiguous, chunk => stream.Write(chunk));
    }
}
