using System.Text;
using System.Text.Unicode;

namespace TransferSharp.IO;

/// <summary>
/// A text file that is not valid UTF-8. Data and vocabulary files are decoded strictly: a silent U+FFFD would turn a
/// byte error into a different text (another token, another label) that nobody sees. <see cref="LineNumber"/> and
/// <see cref="ByteOffset"/> locate the first invalid byte.
/// </summary>
public sealed class InvalidUtf8Exception : InvalidFileException
{
    /// <summary>Creates the exception.</summary>
    public InvalidUtf8Exception(string path, long lineNumber, long byteOffset, string badBytes)
        : base(path, $"line {lineNumber} (byte offset {byteOffset}): not valid UTF-8 (bytes {badBytes}); save the file as UTF-8")
    {
        LineNumber = lineNumber;
        ByteOffset = byteOffset;
    }

    /// <summary>1-based line of the first invalid byte.</summary>
    public long LineNumber { get; }

    /// <summary>0-based byte offset of the first invalid byte in the file.</summary>
    public long ByteOffset { get; }
}

/// <summary>Strict UTF-8 decoding of whole text files, failing with the line and byte offset of the first bad byte.</summary>
internal static class StrictUtf8
{
    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>Decodes <paramref name="bytes"/> read from <paramref name="path"/>, dropping a leading byte-order mark.</summary>
    public static string Decode(string path, ReadOnlySpan<byte> bytes)
    {
        int start = bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var body = bytes[start..];
        if (!Utf8.IsValid(body)) throw Invalid(path, bytes, start);
        return Strict.GetString(body);
    }

    /// <summary>Reads and decodes a whole file.</summary>
    public static string ReadFile(string path) => Decode(path, File.ReadAllBytes(path));

    /// <summary>The file's lines (split at \n, a trailing \r dropped), decoded strictly.</summary>
    public static IEnumerable<string> ReadLines(string path)
    {
        var text = ReadFile(path);
        var lines = text.Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        for (int i = 0; i < count; i++) yield return lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
    }

    private static InvalidUtf8Exception Invalid(string path, ReadOnlySpan<byte> bytes, int start)
    {
        var chars = new char[bytes.Length];
        Utf8.ToUtf16(bytes[start..], chars, out int read, out _, replaceInvalidSequences: false);
        int offset = start + read;
        long line = 1 + bytes[..offset].Count((byte)'\n');
        return new InvalidUtf8Exception(path, line, offset, Convert.ToHexString(bytes[offset..Math.Min(bytes.Length, offset + 4)]));
    }
}
