using System.IO.MemoryMappedFiles;

namespace TransferSharp.Text.Formats;

/// <summary>A whole file mapped read-only, as a pointer and a length (an empty file maps to nothing).</summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private bool _pointerHeld;

    private MappedFile(string path, long length)
    {
        Path = path;
        Length = length;
    }

    public string Path { get; }
    public long Length { get; }
    public byte* Data { get; private set; }

    public ReadOnlySpan<byte> Span(long offset, long count) =>
        new(Data + offset, (int)Math.Min(count, Math.Min(int.MaxValue, Length - offset)));

    public static MappedFile Open(string path)
    {
        long length = new FileInfo(path).Length; // FileNotFoundException names the file
        var file = new MappedFile(path, length);
        if (length == 0) return file;
        try
        {
            file._map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            file._view = file._map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            file._view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            file._pointerHeld = true;
            file.Data = p + file._view.PointerOffset;
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Hands the mapping to a <see cref="VectorStorage"/> that serves rows from it.</summary>
    public VectorStorage DetachAsStorage(long dataOffset, int rows, int dim, VectorPrecision precision, long[]? rowOffsets)
    {
        if (_map is null || _view is null) throw new InvalidOperationException("nothing is mapped");
        ReleasePointer();
        var storage = VectorStorage.FromMapping(_map, _view, dataOffset, rows, dim, precision, rowOffsets);
        _map = null;
        _view = null;
        Data = null;
        return storage;
    }

    private void ReleasePointer()
    {
        if (_pointerHeld) _view!.SafeMemoryMappedViewHandle.ReleasePointer();
        _pointerHeld = false;
    }

    public void Dispose()
    {
        ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
        _view = null;
        _map = null;
        Data = null;
    }
}
