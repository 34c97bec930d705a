using System.Buffers.Binary;
using System.Runtime.InteropServices;
using TransferSharp.Vision.Graph;
using OnnxProto = global::Onnx;

namespace TransferSharp.Onnx;

/// <summary>Reads TensorProto payloads (inline or external) with every size checked before allocating.</summary>
internal static class OnnxTensors
{
    /// <summary>The largest tensor we materialise: .NET arrays hold at most ~2^31 elements.</summary>
    internal const long MaxElements = int.MaxValue / 2;

    internal static int ElementSize(int dataType) => (OnnxProto.TensorProto.Types.DataType)dataType switch
    {
        OnnxProto.TensorProto.Types.DataType.Float or OnnxProto.TensorProto.Types.DataType.Int32
            or OnnxProto.TensorProto.Types.DataType.Uint32 => 4,
        OnnxProto.TensorProto.Types.DataType.Double or OnnxProto.TensorProto.Types.DataType.Int64
            or OnnxProto.TensorProto.Types.DataType.Uint64 => 8,
        OnnxProto.TensorProto.Types.DataType.Float16 or OnnxProto.TensorProto.Types.DataType.Bfloat16
            or OnnxProto.TensorProto.Types.DataType.Int16 or OnnxProto.TensorProto.Types.DataType.Uint16 => 2,
        OnnxProto.TensorProto.Types.DataType.Int8 or OnnxProto.TensorProto.Types.DataType.Uint8
            or OnnxProto.TensorProto.Types.DataType.Bool => 1,
        _ => 0,
    };

    internal static string TypeName(int dataType) =>
        Enum.IsDefined(typeof(OnnxProto.TensorProto.Types.DataType), dataType)
            ? ((OnnxProto.TensorProto.Types.DataType)dataType).ToString().ToLowerInvariant() : $"type {dataType}";

    internal static bool IsFloating(int dataType) => (OnnxProto.TensorProto.Types.DataType)dataType is
        OnnxProto.TensorProto.Types.DataType.Float or OnnxProto.TensorProto.Types.DataType.Double
        or OnnxProto.TensorProto.Types.DataType.Float16 or OnnxProto.TensorProto.Types.DataType.Bfloat16;

    /// <summary>Element count of a shape, or an error for negative, overflowing or absurd shapes.</summary>
    internal static long CheckedCount(string file, string what, IEnumerable<long> dims)
    {
        long n = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new OnnxException(file, $"{what} has a negative dimension {d}");
            if (d != 0 && n > MaxElements / d)
                throw new OnnxException(file, $"{what} declares shape [{string.Join(",", dims)}], more than {MaxElements} elements: refused without allocating");
            n *= d;
        }
        return n;
    }

    /// <summary>Checks a tensor's declared size against the bytes it holds (no allocation).</summary>
    internal static void Validate(string file, string modelDir, OnnxProto.TensorProto t, string what)
    {
        long count = CheckedCount(file, what, t.Dims);
        int size = ElementSize(t.DataType);
        if (size == 0) throw new OnnxException(file, $"{what} has element type {TypeName(t.DataType)}, which the importer does not read");
        if (t.DataLocation == OnnxProto.TensorProto.Types.DataLocation.External)
        {
            var (path, offset, length) = ExternalLocation(file, modelDir, t, what);
            long need = count * size;
            if (length >= 0 && length != need)
                throw new OnnxException(file, $"{what}: external data length {length} bytes, but shape [{string.Join(",", t.Dims)}] of {TypeName(t.DataType)} needs {need}");
            long available = new FileInfo(path).Length;
            if (offset + need > available)
                throw new OnnxException(file, $"{what}: external file '{path}' has {available} bytes, tensor needs bytes {offset}..{offset + need}");
            return;
        }
        if (t.HasRawData)
        {
            if (t.RawData.Length != count * size)
                throw new OnnxException(file, $"{what}: raw data holds {t.RawData.Length} bytes, but shape [{string.Join(",", t.Dims)}] of {TypeName(t.DataType)} needs {count * size}");
            return;
        }
        long held = (OnnxProto.TensorProto.Types.DataType)t.DataType switch
        {
            OnnxProto.TensorProto.Types.DataType.Float => t.FloatData.Count,
            OnnxProto.TensorProto.Types.DataType.Double => t.DoubleData.Count,
            OnnxProto.TensorProto.Types.DataType.Int64 => t.Int64Data.Count,
            OnnxProto.TensorProto.Types.DataType.Uint64 or OnnxProto.TensorProto.Types.DataType.Uint32 => t.Uint64Data.Count,
            _ => t.Int32Data.Count,
        };
        if (held != count)
            throw new OnnxException(file, $"{what}: holds {held} values, but shape [{string.Join(",", t.Dims)}] needs {count}");
    }

    /// <summary>Where an external tensor's bytes are; refuses any location outside the model's folder.</summary>
    internal static (string Path, long Offset, long Length) ExternalLocation(string file, string modelDir, OnnxProto.TensorProto t, string what)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var e in t.ExternalData)
        {
            switch (e.Key)
            {
                case "location": location = e.Value; break;
                case "offset" when !long.TryParse(e.Value, out offset) || offset < 0:
                    throw new OnnxException(file, $"{what}: bad external data offset '{e.Value}'");
                case "length" when !long.TryParse(e.Value, out length) || length < 0:
                    throw new OnnxException(file, $"{what}: bad external data length '{e.Value}'");
            }
        }
        if (string.IsNullOrEmpty(location)) throw new OnnxException(file, $"{what}: external data without a location");
        if (Path.IsPathRooted(location))
            throw new OnnxException(file, $"{what}: external data location '{location}' is an absolute path; only files inside the model's folder are read");
        var root = Path.GetFullPath(modelDir);
        var full = Path.GetFullPath(Path.Combine(root, location));
        var rootWithSep = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        if (!full.StartsWith(rootWithSep, StringComparison.Ordinal))
            throw new OnnxException(file, $"{what}: external data location '{location}' points outside the model's folder {root}; refused");
        if (!File.Exists(full)) throw new OnnxException(file, $"{what}: external data file '{full}' does not exist");
        // A symbolic link could still lead out of the folder.
        var link = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true);
        if (link is not null && !Path.GetFullPath(link.FullName).StartsWith(rootWithSep, StringComparison.Ordinal))
            throw new OnnxException(file, $"{what}: external data '{location}' is a link to '{link.FullName}', outside the model's folder; refused");
        return (full, offset, length);
    }

    /// <summary>Decodes a (validated) tensor.</summary>
    internal static ConstTensor Decode(string file, string modelDir, OnnxProto.TensorProto t, string what)
    {
        Validate(file, modelDir, t, what);
        var shape = t.Dims.ToArray();
        long count = CheckedCount(file, what, shape);
        var type = (OnnxProto.TensorProto.Types.DataType)t.DataType;
        ReadOnlySpan<byte> raw = default;
        byte[]? external = null;
        bool isRaw = false;
        if (t.DataLocation == OnnxProto.TensorProto.Types.DataLocation.External)
        {
            var (path, offset, _) = ExternalLocation(file, modelDir, t, what);
            external = new byte[count * ElementSize(t.DataType)];
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            fs.Seek(offset, SeekOrigin.Begin);
            fs.ReadExactly(external);
            raw = external;
            isRaw = true;
        }
        else if (t.HasRawData)
        {
            raw = t.RawData.Span;
            isRaw = true;
        }
        if (IsFloating(t.DataType))
        {
            var f = new float[count];
            switch (type)
            {
                case OnnxProto.TensorProto.Types.DataType.Float:
                    if (isRaw) CopyLittleEndian(raw, f);
                    else t.FloatData.CopyTo(f, 0);
                    break;
                case OnnxProto.TensorProto.Types.DataType.Double:
                    for (long i = 0; i < count; i++)
                        f[i] = (float)(isRaw ? BinaryPrimitives.ReadDoubleLittleEndian(raw[(int)(i * 8)..]) : t.DoubleData[(int)i]);
                    break;
                case OnnxProto.TensorProto.Types.DataType.Float16:
                    for (long i = 0; i < count; i++)
                    {
                        ushort bits = isRaw ? BinaryPrimitives.ReadUInt16LittleEndian(raw[(int)(i * 2)..]) : (ushort)t.Int32Data[(int)i];
                        f[i] = (float)BitConverter.UInt16BitsToHalf(bits);
                    }
                    break;
                default: // bfloat16: the high half of a float32
                    for (long i = 0; i < count; i++)
                    {
                        uint bits = isRaw ? BinaryPrimitives.ReadUInt16LittleEndian(raw[(int)(i * 2)..]) : (uint)t.Int32Data[(int)i];
                        f[i] = BitConverter.UInt32BitsToSingle(bits << 16);
                    }
                    break;
            }
            return new ConstTensor(shape, f);
        }
        var v = new long[count];
        int size = ElementSize(t.DataType);
        for (long i = 0; i < count; i++)
        {
            if (!isRaw)
            {
                v[i] = type switch
                {
                    OnnxProto.TensorProto.Types.DataType.Int64 => t.Int64Data[(int)i],
                    OnnxProto.TensorProto.Types.DataType.Uint64 or OnnxProto.TensorProto.Types.DataType.Uint32 => (long)t.Uint64Data[(int)i],
                    _ => t.Int32Data[(int)i],
                };
                continue;
            }
            var b = raw[(int)(i * size)..];
            v[i] = type switch
            {
                OnnxProto.TensorProto.Types.DataType.Int64 or OnnxProto.TensorProto.Types.DataType.Uint64 => BinaryPrimitives.ReadInt64LittleEndian(b),
                OnnxProto.TensorProto.Types.DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                OnnxProto.TensorProto.Types.DataType.Uint32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
                OnnxProto.TensorProto.Types.DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                OnnxProto.TensorProto.Types.DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
                OnnxProto.TensorProto.Types.DataType.Int8 => (sbyte)b[0],
                _ => b[0],
            };
        }
        return new ConstTensor(shape, v);
    }

    private static void CopyLittleEndian(ReadOnlySpan<byte> raw, float[] dest)
    {
        if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(raw).CopyTo(dest);
        else for (int i = 0; i < dest.Length; i++) dest[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]);
    }

    /// <summary>A float32 TensorProto with raw little-endian data (for export).</summary>
    internal static OnnxProto.TensorProto FloatTensor(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var t = new OnnxProto.TensorProto { Name = name, DataType = (int)OnnxProto.TensorProto.Types.DataType.Float };
        t.Dims.AddRange(shape);
        var bytes = new byte[values.Length * 4];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        // The array is never touched again: wrap it instead of copying (weights can be hundreds of MB).
        t.RawData = Google.Protobuf.UnsafeByteOperations.UnsafeWrap(bytes);
        return t;
    }

    /// <summary>An int64 TensorProto (for export: shapes, axes, pads).</summary>
    internal static OnnxProto.TensorProto Int64Tensor(string name, long[] shape, IEnumerable<long> values)
    {
        var t = new OnnxProto.TensorProto { Name = name, DataType = (int)OnnxProto.TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(shape);
        t.Int64Data.AddRange(values);
        return t;
    }
}
