using System.Globalization;
using System.Text;
using TransferSharp.IO;

namespace TransferSharp.Text.Formats;

/// <summary>
/// Writes word2vec binary (gensim's layout: no newline after a vector), word2vec text, GloVe text and fastText
/// .vec. Text values are numpy's float32 repr (shortest round-trip decimal), as gensim writes them, so a file
/// converted from gensim's binary twin comes out byte for byte as gensim would write it. Rows are formatted
/// in parallel blocks and written in order.
/// </summary>
internal static class VectorWriter
{
    private const int RowsPerBlock = 1024;

    public static void Write(WordVectors vectors, string path, VectorFileFormat format, CancellationToken cancellation)
    {
        if (format is VectorFileFormat.Auto or VectorFileFormat.FastTextBinary or VectorFileFormat.Cache)
            throw new InvalidOptionException("Format", $"cannot write {format}: choose Word2VecBinary, Word2VecText, GloVe or FastTextVec");
        CheckWords(vectors, format);
        AtomicFile.Write(path, fs =>
        {
            if (format != VectorFileFormat.GloVe)
                fs.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{vectors.Count} {vectors.Dimension}\n")));
            int blocks = (vectors.Count + RowsPerBlock - 1) / RowsPerBlock;
            int window = Math.Max(2, Environment.ProcessorCount * 2);
            for (int first = 0; first < blocks; first += window)
            {
                cancellation.ThrowIfCancellationRequested();
                int count = Math.Min(window, blocks - first);
                var parts = new byte[count][];
                Parallel.For(0, count, b => parts[b] = FormatBlock(vectors, (first + b) * RowsPerBlock, format));
                foreach (var part in parts) fs.Write(part);
            }
        });
    }

    private static byte[] FormatBlock(WordVectors vectors, int start, VectorFileFormat format)
    {
        int end = Math.Min(vectors.Count, start + RowsPerBlock);
        var row = new float[vectors.Dimension];
        if (format == VectorFileFormat.Word2VecBinary)
        {
            using var ms = new MemoryStream();
            for (int i = start; i < end; i++)
            {
                ms.Write(Encoding.UTF8.GetBytes(vectors.Words[i]));
                ms.WriteByte((byte)' ');
                vectors.CopyVector(i, row);
                ms.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()));
            }
            return ms.ToArray();
        }
        var sb = new StringBuilder();
        for (int i = start; i < end; i++)
        {
            sb.Append(vectors.Words[i]);
            vectors.CopyVector(i, row);
            foreach (float x in row)
            {
                sb.Append(' ');
                DecimalFloat.AppendNumpyRepr(sb, x);
            }
            if (format == VectorFileFormat.FastTextVec) sb.Append(' ');
            sb.Append('\n');
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void CheckWords(WordVectors vectors, VectorFileFormat format)
    {
        for (int i = 0; i < vectors.Count; i++)
        {
            var w = vectors.Words[i];
            bool bad = format == VectorFileFormat.Word2VecBinary ? w.Contains(' ') : w.Length == 0 || w.AsSpan().IndexOfAny('\n', '\r') >= 0;
            if (bad)
                throw new TransferSharpException($"word {i} ('{w}') cannot be written in {format}: "
                    + (format == VectorFileFormat.Word2VecBinary ? "it contains a space, which ends a word in that format" : "it is empty or contains a line break"));
        }
    }
}
