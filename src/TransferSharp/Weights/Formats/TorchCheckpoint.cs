using System.IO.Compression;
using System.Numerics;
using TransferSharp.Weights.Pickle;
using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>
/// PyTorch checkpoints (<c>torch.save</c>): the zip format of torch ≥ 1.6 (<c>prefix/data.pkl</c> plus one
/// raw blob per storage under <c>prefix/data/</c>) and the legacy format (magic number, protocol, system
/// info, the object pickle, the storage keys, then each storage as a length and raw bytes).
/// Pickles are read with <see cref="RestrictedUnpickler"/>: weights only, nothing is executed.
/// Only the storages the state dict uses are read, each straight into tensor memory.
/// </summary>
public static class TorchCheckpoint
{
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");
    private const long LegacyProtocol = 1001;

    /// <summary>Reads the state dict in a PyTorch checkpoint (unwrapping <c>{"state_dict": …}</c>-style
    /// wrappers); plain-data entries beside it become <see cref="StateDict.Metadata"/>.</summary>
    public static StateDict Read(string path)
    {
        TensorBytes.EnsureLittleEndianHost();
        var (bytes, length) = Checkpoint.ReadHead(path, 512);
        ReadOnlySpan<byte> head = bytes;
        int n = head.Length;
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return ReadZip(path, length);
        if (n >= 2 && head[0] == 0x80) return ReadLegacy(path, length);
        if (n >= 262 && head.Slice(257, 5).SequenceEqual("ustar"u8))
            throw new CheckpointFormatException(path, "this is the tar-based checkpoint format of PyTorch before 0.4, which is not supported; re-save it with a recent PyTorch");
        throw new CheckpointFormatException(path, n == 0 ? "the file is empty" : "not a PyTorch checkpoint: it is neither a zip archive nor a pickle");
    }

    // ------------------------------------------------------------------ zip format

    private static StateDict ReadZip(string path, long fileLength)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, $"cannot read the file: {e.Message}", e);
        }
        using (fs)
        {
            ZipArchive zip;
            try
            {
                zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
            {
                throw new CheckpointFormatException(path, $"the zip archive is corrupt or truncated ({e.Message})", e);
            }
            using (zip)
            {
                try
                {
                    return ReadZip(path, fileLength, zip);
                }
                catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException && e is not CheckpointException)
                {
                    throw new CheckpointFormatException(path, $"the zip archive is corrupt or truncated ({e.Message})", e);
                }
            }
        }
    }

    private static StateDict ReadZip(string path, long fileLength, ZipArchive zip)
    {
        var pickleEntry = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)
            && e.FullName.Count(c => c == '/') == 1) ?? zip.GetEntry("data.pkl");
        if (pickleEntry is null)
            throw new CheckpointFormatException(path, "the zip archive has no data.pkl: it is not a PyTorch checkpoint");
        var prefix = pickleEntry.FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "constants.pkl") is not null || zip.Entries.Any(e => e.FullName.StartsWith(prefix + "code/", StringComparison.Ordinal)))
            throw new CheckpointFormatException(path, "this is a TorchScript archive (torch.jit.save), which holds code as well as weights; "
                + "in Python, save its weights with torch.save(model.state_dict(), path) and load that file");
        if (zip.GetEntry(prefix + "byteorder") is { } byteOrder)
        {
            using var r = new StreamReader(byteOrder.Open());
            var order = r.ReadToEnd().Trim();
            if (order != "little") throw new CheckpointFormatException(path, $"the checkpoint was saved on a {order}-endian machine, which is not supported");
        }
        CheckEntrySize(path, pickleEntry, fileLength);

        object? root;
        using (var pickle = new BufferedStream(pickleEntry.Open(), 1 << 16))
        {
            var unpickler = new RestrictedUnpickler(pickle, pickleEntry.Length, path, (pid, at) => ZipStorage(path, zip, prefix, pid, at, fileLength));
            root = unpickler.Load();
        }
        var (tensors, metadata) = StateDictExtractor.Extract(root, path);
        return Materialize(path, tensors, metadata, fileLength, (storage, target) =>
        {
            var entry = zip.GetEntry(prefix + "data/" + storage.Key)!;
            using var s = entry.Open();
            TensorBytes.ReadFrom(target, s, path, $"storage '{storage.Key}'");
        });
    }

    private static void CheckEntrySize(string path, ZipArchiveEntry entry, long fileLength)
    {
        // A stored entry is never larger than the file; a compressed one may be, within reason (zip bombs).
        if (entry.Length > Math.Max(fileLength, 100 * entry.CompressedLength))
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' claims {entry.Length} bytes, implausible for a {fileLength}-byte file");
    }

    private static StorageRef ZipStorage(string path, ZipArchive zip, string prefix, object? pid, long at, long fileLength)
    {
        var (dtype, key, numel, _) = ParseStoragePid(path, pid, at, legacy: false);
        var entry = zip.GetEntry(prefix + "data/" + key)
            ?? throw new CheckpointFormatException(path, $"the pickle references storage '{key}', but the archive has no entry {prefix}data/{key}");
        CheckEntrySize(path, entry, fileLength);
        long bytes = numel * TensorBytes.ElementSize(dtype);
        if (numel < 0 || bytes / TensorBytes.ElementSize(dtype) != numel || entry.Length != bytes)
            throw new CheckpointFormatException(path, $"storage '{key}' should hold {numel} × {dtype} = {bytes} bytes, but its entry has {entry.Length}");
        return new StorageRef(key, dtype, numel);
    }

    /// <summary>Parses ('storage', StorageType, key, location, numel[, view_metadata]).</summary>
    private static (ScalarType DType, string Key, long Numel, PyTuple? View) ParseStoragePid(string path, object? pid, long at, bool legacy)
    {
        if (pid is not PyTuple t || t.Count < 5)
            throw new CheckpointFormatException(path, $"the pickle is malformed at byte {at}: a persistent id is a {RestrictedUnpickler.Describe(pid)}, not a storage tuple");
        var typename = t[0] is byte[] b ? System.Text.Encoding.ASCII.GetString(b) : t[0] as string;
        if (typename == "module")
            throw new UnsafeCheckpointException(path, "a pickled nn.Module (torch.save(model))", "Save model.state_dict() instead.");
        if (typename != "storage")
            throw new CheckpointFormatException(path, $"the pickle is malformed at byte {at}: persistent id of kind '{typename}', expected 'storage'");
        var dtype = RestrictedUnpickler.StorageDType(t[1])
            ?? throw new CheckpointFormatException(path, $"the pickle is malformed at byte {at}: storage type {RestrictedUnpickler.Describe(t[1])} is not supported");
        var key = t[2] as string ?? throw new CheckpointFormatException(path, $"the pickle is malformed at byte {at}: storage key is a {RestrictedUnpickler.Describe(t[2])}");
        if (t[4] is not long numel || numel < 0)
            throw new CheckpointFormatException(path, $"the pickle is malformed at byte {at}: storage '{key}' has no valid element count (found {(t[4] switch { long n => n.ToString(), BigInteger => "an integer beyond 64 bits", var x => "a " + RestrictedUnpickler.Describe(x) })})");
        var view = legacy && t.Count > 5 ? t[5] as PyTuple : null;
        return (dtype, key, numel, view);
    }

    // ------------------------------------------------------------------ legacy format

    private sealed record LegacyStorage(ScalarType DType, long Numel)
    {
        public long DataOffset { get; set; } = -1;
    }

    private static StateDict ReadLegacy(string path, long fileLength)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(path, $"cannot read the file: {e.Message}", e);
        }
        using (fs)
        using (var stream = new BufferedStream(fs, 1 << 16))
        {
            object? NextPickle(Func<object?, long, object?>? persistentLoad = null)
            {
                long start = stream.Position;
                return new RestrictedUnpickler(stream, fileLength - start, path, persistentLoad).Load();
            }

            var magic = NextPickle();
            if (!(magic is BigInteger big && big == LegacyMagic))
                throw new CheckpointFormatException(path, "the file is a pickle but not a PyTorch checkpoint (no legacy magic number)");
            if (NextPickle() is not long protocol || protocol != LegacyProtocol)
                throw new CheckpointFormatException(path, $"unsupported legacy checkpoint protocol (expected {LegacyProtocol})");
            if (NextPickle() is not PyDict sysInfo)
                throw new CheckpointFormatException(path, "the legacy header has no system-info dict");
            if (sysInfo.TryGet("little_endian", out var little) && little is false)
                throw new CheckpointFormatException(path, "the checkpoint was saved on a big-endian machine, which is not supported");

            var storages = new Dictionary<string, LegacyStorage>(StringComparer.Ordinal);
            var root = NextPickle((pid, at) =>
            {
                var (dtype, key, numel, view) = ParseStoragePid(path, pid, at, legacy: true);
                if (storages.TryGetValue(key, out var known) && (known.DType != dtype || known.Numel != numel))
                    throw new CheckpointFormatException(path, $"storage '{key}' is described twice, differently");
                storages[key] = new LegacyStorage(dtype, numel);
                if (view is null) return new StorageRef(key, dtype, numel);
                // Pre-1.0 storage views: (view_key, element offset, view size in elements).
                if (view.Count < 3 || view[1] is not long offset || view[2] is not long size || offset < 0 || size < 0 || offset + size > numel)
                    throw new CheckpointFormatException(path, $"storage view of '{key}' at byte {at} is malformed or out of bounds");
                return new StorageRef(key, dtype, size, offset);
            });
            if (NextPickle() is not PyList keyList)
                throw new CheckpointFormatException(path, "the legacy checkpoint has no storage key list after the object pickle");

            // Walk the storage blobs (an int64 element count, then the bytes) to find where each one is.
            long position = stream.Position;
            Span<byte> count = stackalloc byte[8];
            foreach (var k in keyList.Items)
            {
                if (k is not string key || !storages.TryGetValue(key, out var storage))
                    throw new CheckpointFormatException(path, $"the storage list names '{k}', which the pickle never references");
                if (fileLength - position < 8) throw Truncated(path, key, position);
                stream.Position = position;
                stream.ReadExactly(count);
                long numel = BitConverter.ToInt64(count);
                if (numel != storage.Numel)
                    throw new CheckpointFormatException(path, $"storage '{key}' at byte {position} records {numel} elements, the pickle says {storage.Numel}");
                long bytes = numel * TensorBytes.ElementSize(storage.DType);
                if (bytes > fileLength - position - 8) throw Truncated(path, key, position);
                storage.DataOffset = position + 8;
                position += 8 + bytes;
            }
            var (tensors, metadata) = StateDictExtractor.Extract(root, path);
            return Materialize(path, tensors, metadata, fileLength, (storage, target) =>
            {
                var s = storages[storage.Key];
                if (s.DataOffset < 0) throw new CheckpointFormatException(path, $"storage '{storage.Key}' is not in the storage list");
                stream.Position = s.DataOffset;
                TensorBytes.ReadFrom(target, stream, path, $"storage '{storage.Key}'");
            });
        }
    }

    private static CheckpointFormatException Truncated(string path, string key, long position) =>
        new(path, $"the file is truncated: storage '{key}' at byte {position} runs past the end");

    // ------------------------------------------------------------------ tensors from storages

    /// <summary>Reads each used storage once and cuts the tensors out of it (views are copied so that
    /// every tensor owns its memory). Sizes are checked before anything is allocated.</summary>
    private static StateDict Materialize(string path, List<(string Name, TensorRef Tensor)> tensors, Dictionary<string, string> metadata,
        long fileLength, Action<StorageRef, Tensor> readStorage)
    {
        // Tensors may overlap (tied weights), but never by much: refuse claims far beyond the file's size.
        long budget = 4 * fileLength + (256L << 20), total = 0;
        foreach (var (name, t) in tensors)
        {
            total += CheckBounds(path, name, t);
            if (total > budget)
                throw new CheckpointFormatException(path, $"the tensors claim more than {budget} bytes in a {fileLength}-byte file: the file is corrupt or hostile");
        }
        var dict = new StateDict(path, metadata);
        try
        {
            foreach (var group in tensors.GroupBy(t => t.Tensor.Storage.Key))
            {
                var storage = group.First().Tensor.Storage;
                // Typed storages hold one dtype; an untyped one (torch ≥ 2) is read as the dtype of its tensors.
                var dtypes = group.Select(g => g.Tensor.DType).Distinct().ToList();
                if (dtypes.Count > 1)
                    throw new CheckpointFormatException(path, $"storage '{storage.Key}' is viewed as several dtypes ({string.Join(", ", dtypes)}), which is not supported");
                var dtype = dtypes[0];
                int storageElem = TensorBytes.ElementSize(storage.DType), elem = TensorBytes.ElementSize(dtype);
                long rootNumel = group.Max(g => g.Tensor.Storage.ElementOffset + g.Tensor.Storage.Numel);
                using var scope = NewDisposeScope();
                var root = empty(rootNumel * storageElem / elem, dtype);
                readStorage(storage with { Numel = rootNumel, ElementOffset = 0 }, root);
                foreach (var (name, t) in group)
                {
                    long offset = t.Offset + t.Storage.ElementOffset * storageElem / elem;
                    var view = root.as_strided(t.Size, t.Stride, offset);
                    // A tensor that is its whole storage keeps it; a slice or a strided view gets its own
                    // contiguous copy, so it neither pins a larger storage nor aliases another entry.
                    bool whole = offset == 0 && view.numel() == root.numel();
                    var owned = !view.is_contiguous() ? view.contiguous() : whole ? view : view.clone();
                    dict.Add(name, owned);
                }
            }
            return dict;
        }
        catch
        {
            dict.Dispose();
            throw;
        }
    }

    /// <summary>Checks a tensor's view lies inside its storage; returns its size in bytes.</summary>
    private static long CheckBounds(string path, string name, TensorRef t)
    {
        var s = t.Storage;
        int storageElem = TensorBytes.ElementSize(s.DType), elem;
        try
        {
            elem = TensorBytes.ElementSize(t.DType);
        }
        catch (NotSupportedException)
        {
            throw new CheckpointFormatException(path, $"tensor '{name}' has dtype {t.DType}, which is not supported");
        }
        if (t.DType != s.DType && s.DType != ScalarType.Byte)
            throw new CheckpointFormatException(path, $"tensor '{name}' is {t.DType} but its storage is {s.DType}");
        long storageBytes = s.Numel * storageElem;
        if (storageBytes % elem != 0 || s.ElementOffset * storageElem % elem != 0)
            throw new CheckpointFormatException(path, $"tensor '{name}' is {t.DType}, but its untyped storage '{s.Key}' of {storageBytes} bytes does not divide into {elem}-byte elements");
        long available = storageBytes / elem;
        string Shape() => $"size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}], offset {t.Offset}";
        if (t.Size.Any(d => d < 0) || t.Stride.Any(d => d < 0))
            throw new CheckpointFormatException(path, $"tensor '{name}' has a negative size or stride ({Shape()})");
        long numel = TensorBytes.Numel(t.Size);
        if (numel < 0 || numel > long.MaxValue / elem)
            throw new CheckpointFormatException(path, $"tensor '{name}' has an impossible size ({Shape()})");
        if (numel == 0) return 0;
        long last = t.Offset;
        for (int i = 0; i < t.Size.Length; i++)
        {
            long step = t.Size[i] - 1;
            if (step > 0 && t.Stride[i] > (long.MaxValue - last) / step)
                throw new CheckpointFormatException(path, $"tensor '{name}' has an impossible layout ({Shape()})");
            last += step * t.Stride[i];
        }
        if (last >= available)
            throw new CheckpointFormatException(path, $"tensor '{name}' ({Shape()}) reaches element {last}, beyond its storage '{s.Key}' of {available} elements");
        return numel * elem;
    }
}
