namespace TransferSharp.Text;

/// <summary>
/// A word-vector file (word2vec, GloVe, fastText, or a TransferSharp cache) cannot be read: it is truncated,
/// corrupt, lies in its header, or is not in the format it claims. The message names the file and, where it
/// helps, the line (<see cref="LineNumber"/>) or byte offset (<see cref="ByteOffset"/>) of the problem.
/// </summary>
public sealed class WordVectorsFormatException : InvalidFileException
{
    /// <summary>Creates the exception.</summary>
    public WordVectorsFormatException(string path, string reason, long? lineNumber = null, long? byteOffset = null, Exception? inner = null)
        : base(path, Describe(reason, lineNumber, byteOffset), inner)
    {
        LineNumber = lineNumber;
        ByteOffset = byteOffset;
    }

    /// <summary>1-based line number of the problem in a text file (the header is line 1), if known.</summary>
    public long? LineNumber { get; }

    /// <summary>0-based byte offset of the problem in the file, if known.</summary>
    public long? ByteOffset { get; }

    private static string Describe(string reason, long? line, long? offset) =>
        (line, offset) switch
        {
            ({ } l, { } o) => $"line {l} (byte offset {o}): {reason}",
            ({ } l, null) => $"line {l}: {reason}",
            (null, { } o) => $"byte offset {o}: {reason}",
            _ => reason,
        };
}

/// <summary>A word asked for is not in the vocabulary (and no subword model can make a vector for it).</summary>
public sealed class WordNotFoundException : TransferSharpException
{
    /// <summary>Creates the exception for <paramref name="word"/>.</summary>
    public WordNotFoundException(string word, string? source = null)
        : base($"'{word}' is not in the vocabulary{(source is null ? "" : $" of {source}")}"
            + " (words are case-sensitive; a fastText .bin model can make vectors for unseen words, a .vec or word2vec file cannot)")
    {
        Word = word;
    }

    /// <summary>The missing word.</summary>
    public string Word { get; }
}
