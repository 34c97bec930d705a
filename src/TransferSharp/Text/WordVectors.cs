using System.Diagnostics;
using TransferSharp.Text.FastText;
using TransferSharp.Text.Formats;

namespace TransferSharp.Text;

/// <summary>
/// Pretrained word vectors — word2vec, GloVe, fastText — behind one type, modelled on gensim's KeyedVectors:
/// the vocabulary in file order with O(1) lookup, a float32 (or float16) matrix, row norms computed once on
/// first use, and the query API (<see cref="MostSimilar(IEnumerable{string}, IEnumerable{string}?, int, int?)"/>,
/// <see cref="MostSimilarCosMul"/>, <see cref="Similarity"/>, <see cref="DoesntMatch"/>, batched
/// <see cref="NearestNeighbors(IReadOnlyList{string}, int, int?)"/>, analogy and word-pair evaluation).
/// Vectors loaded from a fastText <c>.bin</c>/<c>.ftz</c> also answer for words outside the vocabulary,
/// from their character n-grams (<see cref="Subwords"/>). Dispose it to free the matrix.
/// </summary>
public sealed partial class WordVectors : IDisposable
{
    private readonly string[] _words;
    private readonly Dictionary<string, int> _index;
    private readonly VectorStorage _storage;
    private float[]? _norms;

    internal WordVectors(RawVectors raw)
    {
        var words = raw.Words;
        var index = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        List<int>? keep = null;
        for (int i = 0; i < words.Length; i++)
        {
            if (index.TryAdd(words[i], index.Count))
            {
                keep?.Add(i);
                continue;
            }
            keep ??= Enumerable.Range(0, i).ToList();
        }
        int duplicates = words.Length - index.Count;
        if (keep is not null)
        {
            raw.Storage.KeepRows(keep);
            words = keep.Select(i => words[i]).ToArray();
        }
        _words = words;
        _index = index;
        _storage = raw.Storage;
        Subwords = raw.Subwords;
        LoadInfo = raw.Info with { Count = words.Length, Dimension = raw.Storage.Dim, DuplicatesSkipped = duplicates, Precision = raw.Storage.Precision, MemoryMapped = raw.Storage.IsMapped };
    }

    /// <summary>Word vectors from memory: <paramref name="vectors"/> holds <c>words.Count × dimension</c> values,
    /// row by row. Duplicate words keep their first row.</summary>
    public static WordVectors FromVectors(IReadOnlyList<string> words, ReadOnlySpan<float> vectors, int dimension, VectorPrecision precision = VectorPrecision.Float32)
    {
        ArgumentNullException.ThrowIfNull(words);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), "the dimension must be positive");
        if ((long)words.Count * dimension != vectors.Length)
            throw new ArgumentException($"{words.Count} words × {dimension} dimensions need {(long)words.Count * dimension} values, got {vectors.Length}", nameof(vectors));
        var storage = VectorStorage.Allocate(words.Count, dimension, precision);
        for (int i = 0; i < words.Count; i++) storage.SetRow(i, vectors.Slice(i * dimension, dimension));
        return new WordVectors(new RawVectors
        {
            Words = words.ToArray(),
            Storage = storage,
            Info = new WordVectorsLoadInfo { Path = "(memory)", Format = VectorFileFormat.Auto, Precision = precision },
        });
    }

    /// <summary>
    /// Loads a word-vector file: word2vec binary or text, GloVe text, fastText .vec, a fastText .bin/.ftz model,
    /// or a TransferSharp cache — detected from the content unless <see cref="WordVectorsLoadOptions.Format"/>
    /// says. Bad files raise <see cref="WordVectorsFormatException"/> naming the file and the line or byte.
    /// </summary>
    public static WordVectors Load(string path, WordVectorsLoadOptions? options = null)
    {
        options ??= new WordVectorsLoadOptions();
        if (options.Limit is < 0) throw new ArgumentOutOfRangeException(nameof(options), "Limit must be 0 or more");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        var clock = Stopwatch.StartNew();
        var format = options.Format == VectorFileFormat.Auto ? FormatDetector.Detect(path) : options.Format;
        bool isText = format is VectorFileFormat.Word2VecText or VectorFileFormat.GloVe or VectorFileFormat.FastTextVec;
        string? cachePath = null;
        if (isText && options.CacheDirectory is { } cacheDir)
        {
            cachePath = VectorCache.PathFor(path, format, options, cacheDir);
            if (VectorCache.TryOpen(cachePath, path, options) is { } cached)
                return new WordVectors(cached with { Info = cached.Info with { CachePath = cachePath, FromCache = true, Elapsed = clock.Elapsed } });
        }
        var raw = format switch
        {
            VectorFileFormat.Word2VecBinary => Word2VecBinaryReader.Read(path, options),
            VectorFileFormat.Word2VecText or VectorFileFormat.FastTextVec or VectorFileFormat.GloVe => TextVectorReader.Read(path, options, format),
            VectorFileFormat.FastTextBinary => ReadFastTextModel(path, options),
            VectorFileFormat.Cache => VectorCache.Open(path, options),
            _ => throw new ArgumentOutOfRangeException(nameof(options), $"unknown format {format}"),
        };
        var vectors = new WordVectors(raw);
        if (cachePath is not null)
        {
            options.Progress?.Report(new LoadProgress("caching", 0, 1));
            bool written = VectorCache.TryWrite(vectors, cachePath, path, options.Cancellation);
            vectors.LoadInfo = vectors.LoadInfo with { CachePath = written ? cachePath : null };
        }
        vectors.LoadInfo = vectors.LoadInfo with { Elapsed = clock.Elapsed };
        return vectors;
    }

    private static RawVectors ReadFastTextModel(string path, WordVectorsLoadOptions options)
    {
        var clock = Stopwatch.StartNew();
        var model = FastTextReader.Read(path, options.MemoryMap, options.EncodingErrors, options.Cancellation);
        try
        {
            int rows = Math.Min(model.Words.Count, options.Limit ?? int.MaxValue);
            options.Progress?.Report(new LoadProgress("computing word vectors", 0, rows));
            var storage = model.ComputeWordVectorStorage(options.Precision, rows);
            return new RawVectors
            {
                Words = model.Words.Take(rows).ToArray(),
                Storage = storage,
                Subwords = model,
                Info = new WordVectorsLoadInfo
                {
                    Path = path,
                    Format = VectorFileFormat.FastTextBinary,
                    Truncated = rows < model.Words.Count,
                    Precision = options.Precision,
                    Elapsed = clock.Elapsed,
                },
            };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the vectors in a word2vec binary, word2vec text, GloVe or fastText .vec file (or a TransferSharp
    /// cache), under a temporary name renamed when complete: an interrupted write leaves no partial file.
    /// Text values are the shortest decimals that read back to the same float32, formatted as gensim does.
    /// </summary>
    public void Save(string path, VectorFileFormat format, CancellationToken cancellation = default)
    {
        if (format == VectorFileFormat.Cache) VectorCache.Write(this, path, sourcePath: null, cancellation);
        else VectorWriter.Write(this, path, format, cancellation);
    }

    /// <summary>Number of words.</summary>
    public int Count => _words.Length;

    /// <summary>Vector dimension.</summary>
    public int Dimension => _storage.Dim;

    /// <summary>The vocabulary in file order (index i is row i).</summary>
    public IReadOnlyList<string> Words => _words;

    /// <summary>Storage precision.</summary>
    public VectorPrecision Precision => _storage.Precision;

    /// <summary>What loading found (format, declared count, duplicates skipped, time taken, …).</summary>
    public WordVectorsLoadInfo LoadInfo { get; private set; }

    /// <summary>For vectors read from a fastText model: the model, which makes vectors for any word from its
    /// character n-grams (and is disposed with these vectors). Null otherwise.</summary>
    public FastTextModel? Subwords { get; }

    internal VectorStorage Storage => _storage;

    /// <summary>True when the word is in the vocabulary (case-sensitive).</summary>
    public bool Contains(string word) => _index.ContainsKey(word);

    /// <summary>The word's row, or -1.</summary>
    public int IndexOf(string word) => _index.TryGetValue(word, out int i) ? i : -1;

    /// <summary>The word's vector (a copy); see <see cref="GetVector(string)"/>.</summary>
    public float[] this[string word] => GetVector(word);

    /// <summary>The word's vector (a copy). A word outside the vocabulary gets its fastText subword vector when
    /// <see cref="Subwords"/> is there; otherwise <see cref="WordNotFoundException"/>.</summary>
    public float[] GetVector(string word)
    {
        var v = new float[Dimension];
        if (!TryGetVector(word, v)) throw new WordNotFoundException(word, LoadInfo.Path);
        return v;
    }

    /// <summary>Writes the word's vector (vocabulary row, or fastText subword vector) into
    /// <paramref name="destination"/>; false when there is neither.</summary>
    public bool TryGetVector(string word, Span<float> destination)
    {
        if (_index.TryGetValue(word, out int i))
        {
            _storage.CopyRow(i, destination);
            return true;
        }
        if (Subwords is null) return false;
        Subwords.GetWordVector(word, destination);
        return true;
    }

    /// <summary>Row <paramref name="index"/> (a copy).</summary>
    public float[] GetVector(int index)
    {
        CheckIndex(index);
        var v = new float[Dimension];
        _storage.CopyRow(index, v);
        return v;
    }

    /// <summary>Copies row <paramref name="index"/> into <paramref name="destination"/>.</summary>
    public void CopyVector(int index, Span<float> destination)
    {
        CheckIndex(index);
        _storage.CopyRow(index, destination);
    }

    /// <summary>Row <paramref name="index"/> without copying (float32 storage only; valid until disposal).</summary>
    public ReadOnlySpan<float> GetVectorSpan(int index)
    {
        CheckIndex(index);
        return _storage.RowFloat32(index);
    }

    /// <summary>A new, independent set of the first <paramref name="count"/> words (gensim's <c>limit</c>,
    /// after the fact; the fastText subword model is not carried over).</summary>
    public WordVectors Limit(int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "count must be 0 or more");
        count = Math.Min(count, Count);
        return new WordVectors(new RawVectors
        {
            Words = _words[..count],
            Storage = _storage.CopyFirst(count, Precision),
            Info = LoadInfo with { Truncated = LoadInfo.Truncated || count < Count, MemoryMapped = false },
        });
    }

    /// <summary>Scales every vector to unit length in place (gensim's <c>unit_normalize_all</c>): similarities are
    /// unchanged, raw vectors are lost. Not possible for memory-mapped vectors.</summary>
    public void UnitNormalizeAll()
    {
        _storage.NormalizeRowsInPlace();
        _norms = null;
    }

    private void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is outside 0..{Count - 1}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _storage.Dispose();
        Subwords?.Dispose();
    }
}
