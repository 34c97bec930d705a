using TransferSharp.Text.FastText;

namespace TransferSharp.Text.Formats;

/// <summary>Tells the vector formats apart by content (the extension is only a hint users get wrong).</summary>
internal static class FormatDetector
{
    public static VectorFileFormat Detect(string path)
    {
        var head = new byte[64 * 1024];
        int n;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1))
            n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var span = head.AsSpan(0, n);
        if (n == 0) throw new WordVectorsFormatException(path, "the file is empty");
        if (FastTextReader.IsFastTextModel(span)) return VectorFileFormat.FastTextBinary;
        if (VectorCache.HasMagic(span)) return VectorFileFormat.Cache;
        int nl = span.IndexOf((byte)'\n');
        var first = nl < 0 ? span : span[..nl];
        if (!TextVectorReader.TryParseHeader(first, out _, out long dim))
            return VectorFileFormat.GloVe;
        if (nl < 0) return VectorFileFormat.Word2VecText;
        var rest = span[(nl + 1)..];
        int space = rest.IndexOf((byte)' ');
        if (space < 0) return VectorFileFormat.Word2VecText;
        var values = rest[(space + 1)..];
        values = values[..(int)Math.Min(values.Length, Math.Max(4, dim * 4))];
        // A text line continues with digits, signs, points, exponents, spaces; four bytes of a float32 almost never do.
        foreach (byte b in values)
        {
            if (b == (byte)'\n') break;
            if (!IsTextNumberByte(b)) return VectorFileFormat.Word2VecBinary;
        }
        return Path.GetExtension(path).Equals(".vec", StringComparison.OrdinalIgnoreCase) ? VectorFileFormat.FastTextVec : VectorFileFormat.Word2VecText;
    }

    private static bool IsTextNumberByte(byte b) =>
        b is >= (byte)'0' and <= (byte)'9' or (byte)'.' or (byte)'-' or (byte)'+' or (byte)'e' or (byte)'E' or (byte)' ' or (byte)'\t'
            or (byte)'\r' or (byte)'\n' or (byte)'n' or (byte)'a' or (byte)'i' or (byte)'f' or (byte)'N' or (byte)'A' or (byte)'I' or (byte)'F';
}
