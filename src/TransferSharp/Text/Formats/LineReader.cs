using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace TransferSharp.Text.Formats;

/// <summary>
/// Reads a byte range of a file line by line through a private buffer with positioned reads (pread), so that
/// several threads can each read their own part of one file and the process holds only its buffers — not a
/// mapping of the whole file, whose pages would all count as its memory. A line is valid until the next call.
/// </summary>
internal sealed class LineReader : IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly long _end;
    private byte[] _buffer;
    private long _bufferOffset; // file offset of _buffer[0]
    private int _start, _count;  // unread bytes are _buffer[_start.._start+_count]
    private long _next;          // file offset of the next read

    public LineReader(SafeFileHandle file, long start, long end, int bufferBytes = 4 << 20)
    {
        _file = file;
        _end = end;
        _next = start;
        _bufferOffset = start;
        _buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(bufferBytes, Math.Max(4096, end - start)));
    }

    /// <summary>File offset just past the last line returned.</summary>
    public long Position => _bufferOffset + _start;

    /// <summary>The next line without its '\n' (a last line without one is returned too) and its file offset.</summary>
    public bool Next(out ReadOnlySpan<byte> line, out long offset)
    {
        while (true)
        {
            var unread = _buffer.AsSpan(_start, _count);
            int nl = unread.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                line = unread[..nl];
                offset = _bufferOffset + _start;
                _start += nl + 1;
                _count -= nl + 1;
                return true;
            }
            if (_next >= _end)
            {
                offset = _bufferOffset + _start;
                line = unread;
                _start += _count;
                _count = 0;
                return line.Length > 0;
            }
            Refill();
        }
    }

    private void Refill()
    {
        if (_count == _buffer.Length)
        {
            // A line longer than the buffer: grow it (lines of a 1M-dimension file are ~10 MB).
            var bigger = ArrayPool<byte>.Shared.Rent(checked(_buffer.Length * 2));
            _buffer.AsSpan(_start, _count).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        else if (_start > 0)
        {
            _buffer.AsSpan(_start, _count).CopyTo(_buffer);
        }
        _bufferOffset += _start;
        _start = 0;
        int want = (int)Math.Min(_buffer.Length - _count, _end - _next);
        int read = RandomAccess.Read(_file, _buffer.AsSpan(_count, want), _next);
        if (read <= 0) throw new IOException($"the file shrank while it was being read (no data at offset {_next})");
        _count += read;
        _next += read;
    }

    public void Dispose()
    {
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    /// <summary>Offset of the first '\n' at or after <paramref name="from"/>, or <paramref name="end"/>.</summary>
    public static long FindNewline(SafeFileHandle file, long from, long end)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (from < end)
            {
                int read = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, end - from)), from);
                if (read <= 0) return end;
                int nl = buffer.AsSpan(0, read).IndexOf((byte)'\n');
                if (nl >= 0) return from + nl;
                from += read;
            }
            return end;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
