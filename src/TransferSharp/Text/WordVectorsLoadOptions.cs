using TransferSharp.Weights;

namespace TransferSharp.Text;

/// <summary>The file formats <see cref="WordVectors"/> reads (and, except the fastText model, writes).</summary>
public enum VectorFileFormat
{
    /// <summary>Decide from the content: fastText model magic, TransferSharp cache magic, a <c>count dim</c>
    /// header followed by binary or text vectors, or headerless GloVe text.</summary>
    Auto,

    /// <summary>word2vec C binary: header <c>count dim</c>, then per word the word, a space and dim little-endian float32.</summary>
    Word2VecBinary,

    /// <summary>word2vec text: header <c>count dim</c>, then <c>word v1 … vd</c> per line.</summary>
    Word2VecText,

    /// <summary>GloVe text: <c>word v1 … vd</c> per line, no header.</summary>
    GloVe,

    /// <summary>fastText <c>.vec</c>: word2vec text as fastText writes it (a space after the last value).</summary>
    FastTextVec,

    /// <summary>fastText model <c>.bin</c> or quantized <c>.ftz</c> (read only): the vocabulary's vectors plus
    /// character n-grams for words outside it.</summary>
    FastTextBinary,

    /// <summary>TransferSharp's own binary cache (<c>.tswv</c>): opened instantly by memory mapping.</summary>
    Cache,
}

/// <summary>What to do with bytes in a word that are not valid UTF-8.</summary>
public enum EncodingErrorMode
{
    /// <summary>Stop with a <see cref="WordVectorsFormatException"/> giving the byte offset (the default).</summary>
    Fail,

    /// <summary>Replace each invalid sequence with U+FFFD and count the words affected
    /// (<see cref="WordVectorsLoadInfo.InvalidUtf8Words"/>).</summary>
    Replace,
}

/// <summary>How to load a word-vector file.</summary>
public sealed record WordVectorsLoadOptions
{
    /// <summary>The file's format; <see cref="VectorFileFormat.Auto"/> (default) detects it from the content.</summary>
    public VectorFileFormat Format { get; init; } = VectorFileFormat.Auto;

    /// <summary>Read only the first N words (the file's order; for most published vectors the most frequent).
    /// Reading stops there: the rest of the file is not touched.</summary>
    public int? Limit { get; init; }

    /// <summary>Storage precision; <see cref="VectorPrecision.Float16"/> halves the memory.</summary>
    public VectorPrecision Precision { get; init; } = VectorPrecision.Float32;

    /// <summary>For word2vec binary files and caches: serve vectors straight from the file through a read-only
    /// memory mapping instead of copying them (pages are read on first use and shared between processes).</summary>
    public bool MemoryMap { get; init; }

    /// <summary>When set, a text file is converted once into a binary cache in this directory (keyed by the
    /// file's path, size, time stamp and these options) and later loads open that cache by memory mapping.
    /// <see cref="DefaultCacheDirectory"/> is the usual choice.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>What to do with words that are not valid UTF-8 (default: fail with the byte offset).</summary>
    public EncodingErrorMode EncodingErrors { get; init; } = EncodingErrorMode.Fail;

    /// <summary>Threads for parsing text files (0 = one per core).</summary>
    public int Threads { get; init; }

    /// <summary>Told how far loading has got (on the loading thread, about ten times a second).</summary>
    public IProgress<LoadProgress>? Progress { get; init; }

    /// <summary>Cancels loading; nothing is left behind (a cache being written is discarded).</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>$TRANSFERSHARP_HOME/vectors (default ~/.cache/transfersharp/vectors).</summary>
    public static string DefaultCacheDirectory => Path.Combine(WeightCache.DefaultRoot, "vectors");
}

/// <summary>Loading progress: the stage ("scanning", "parsing", "reading", "caching") and bytes done of total.</summary>
public readonly record struct LoadProgress(string Stage, long BytesDone, long BytesTotal);

/// <summary>What loading found, for reports and <c>transfer vectors info</c>.</summary>
public sealed record WordVectorsLoadInfo
{
    /// <summary>The file read (for a cache hit: the original file).</summary>
    public string Path { get; init; } = "";

    /// <summary>The format read.</summary>
    public VectorFileFormat Format { get; init; }

    /// <summary>The word count the header declared (null for GloVe and fastText models).</summary>
    public long? DeclaredCount { get; init; }

    /// <summary>Words loaded (after duplicates were dropped).</summary>
    public int Count { get; init; }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; init; }

    /// <summary>Later occurrences of a word already seen: skipped, the first is kept (as gensim does).</summary>
    public int DuplicatesSkipped { get; init; }

    /// <summary>Words whose invalid UTF-8 was replaced (<see cref="EncodingErrorMode.Replace"/>).</summary>
    public int InvalidUtf8Words { get; init; }

    /// <summary>Text lines whose word contains spaces (more fields than the dimension, the leading ones not
    /// numbers, as in GloVe 840B): the word is everything before the last dim fields.</summary>
    public int WordsWithSpaces { get; init; }

    /// <summary>Blank lines skipped in a text file.</summary>
    public int BlankLines { get; init; }

    /// <summary>True when <see cref="WordVectorsLoadOptions.Limit"/> stopped reading before the end.</summary>
    public bool Truncated { get; init; }

    /// <summary>Storage precision.</summary>
    public VectorPrecision Precision { get; init; }

    /// <summary>True when the vectors are served from a memory-mapped file.</summary>
    public bool MemoryMapped { get; init; }

    /// <summary>The cache file used or written, if any.</summary>
    public string? CachePath { get; init; }

    /// <summary>True when the vectors came from an existing cache.</summary>
    public bool FromCache { get; init; }

    /// <summary>Time spent loading.</summary>
    public TimeSpan Elapsed { get; init; }
}
