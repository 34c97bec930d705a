using System.Buffers.Binary;
using TransferSharp.Text.Formats;

namespace TransferSharp.Text.FastText;

/// <summary>
/// Reads fastText's binary model (.bin, and .ftz when quantized) as fastText 0.9.2 writes it (and, as gensim does,
/// the unsupervised models of fastText before the format had a magic number, version 0 here): magic and version,
/// the stored arguments, the dictionary (words, counts, types, pruning table), the input matrix (dense or
/// product-quantized) and the output matrix. Every count and size is checked against what is left of the file
/// before anything is allocated.
/// </summary>
internal static unsafe class FastTextReader
{
    public const int Magic = 793712314;
    public const int LatestVersion = 12;

    /// <summary>Bytes of the stored arguments of a file without magic and version (12 ints and a double).</summary>
    public const int HeaderBytes = 12 * 4 + 8;

    /// <summary>The version given to files of fastText before magic numbers (2016, before quantization).</summary>
    public const int PreMagicVersion = 0;

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(head) == Magic;

    /// <summary>True for a fastText model of either layout (<paramref name="head"/>: the first <see cref="HeaderBytes"/> bytes or more).</summary>
    public static bool IsFastTextModel(ReadOnlySpan<byte> head) => HasMagic(head) || LooksLikePreMagicModel(head);

    /// <summary>
    /// A model of fastText before version 11 starts directly with its arguments: dim, ws, epoch, minCount, neg,
    /// wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate (int32) and t (double). Every one must be in the
    /// range fastText can write; a text file (no NUL bytes) never passes.
    /// </summary>
    public static bool LooksLikePreMagicModel(ReadOnlySpan<byte> head)
    {
        if (head.Length < HeaderBytes) return false;
        Span<int> v = stackalloc int[12];
        for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadInt32LittleEndian(head[(i * 4)..]);
        int dim = v[0], ws = v[1], epoch = v[2], minCount = v[3], neg = v[4], wordNgrams = v[5], loss = v[6], model = v[7],
            bucket = v[8], minn = v[9], maxn = v[10], lrUpdateRate = v[11];
        double t = BinaryPrimitives.ReadDoubleLittleEndian(head[48..]);
        return dim is > 0 and <= LoadSupport.MaxDimension && ws is > 0 and <= 1000 && epoch is > 0 and <= 100_000 && minCount >= 0
            && neg is >= 0 and <= 1000 && wordNgrams is > 0 and <= 1024 && loss is >= 1 and <= 3 && model is >= 1 and <= 3
            && bucket >= 0 && minn is >= 0 and <= 64 && maxn is >= 0 and <= 64 && lrUpdateRate is > 0 and <= 1_000_000
            && double.IsFinite(t) && t is > 0 and < 1;
    }

    private sealed class Cursor(MappedFile file)
    {
        public long Position;
        public MappedFile File { get; } = file;
        public string Path => File.Path;
        public long Remaining => File.Length - Position;

        public void Need(long bytes, string what)
        {
            if (bytes < 0 || bytes > Remaining)
                throw new WordVectorsFormatException(Path, $"the file ends while reading {what} ({bytes} bytes needed, {Remaining} left): it is truncated", null, Position);
        }

        public int Int32(string what) { Need(4, what); int v = BinaryPrimitives.ReadInt32LittleEndian(File.Span(Position, 4)); Position += 4; return v; }
        public long Int64(string what) { Need(8, what); long v = BinaryPrimitives.ReadInt64LittleEndian(File.Span(Position, 8)); Position += 8; return v; }
        public double Double(string what) { Need(8, what); double v = BinaryPrimitives.ReadDoubleLittleEndian(File.Span(Position, 8)); Position += 8; return v; }
        public byte Byte(string what) { Need(1, what); return File.Data[Position++]; }

        public ReadOnlySpan<byte> CString(string what, int max)
        {
            var window = File.Span(Position, max + 1);
            int zero = window.IndexOf((byte)0);
            if (zero < 0)
            {
                if (window.Length <= max) throw new WordVectorsFormatException(Path, $"the file ends inside {what}: it is truncated", null, Position);
                throw new WordVectorsFormatException(Path, $"{what} is not terminated within {max} bytes: the dictionary is corrupt", null, Position);
            }
            var s = window[..zero];
            Position += zero + 1;
            return s;
        }

        public WordVectorsFormatException Error(string reason) => new(Path, reason, null, Position);
    }

    public static FastTextModel Read(string path, bool memoryMap, EncodingErrorMode encodingErrors, CancellationToken cancellation = default)
    {
        var file = MappedFile.Open(path);
        IFastTextMatrix? input = null, output = null;
        try
        {
            var c = new Cursor(file);
            if (file.Length < 8) throw new WordVectorsFormatException(path, $"{file.Length} bytes is too short for a fastText model");
            int version;
            if (LooksLikePreMagicModel(file.Span(0, Math.Min(file.Length, HeaderBytes))))
                version = PreMagicVersion;
            else
            {
                int magic = c.Int32("the magic number");
                if (magic != Magic)
                    throw new WordVectorsFormatException(path, $"not a fastText model: the file starts with 0x{magic:X8}, a fastText .bin/.ftz starts with 0x{Magic:X8} "
                        + "(or, before fastText had a magic number, with plausible arguments)", null, 0);
                version = c.Int32("the version");
                if (version is not (11 or 12))
                    throw new WordVectorsFormatException(path, $"fastText model version {version} is not supported (fastText 0.9 writes version {LatestVersion}; 11 is the one before)", null, 4);
            }
            bool preMagic = version == PreMagicVersion;
            var args = ReadArgs(c, version);
            if (preMagic && args.Model == FastTextModelKind.Supervised)
                throw c.Error("a fastText classifier from before fastText had a format version (2016) is not supported (gensim refuses these too); "
                    + "retrain it with a current fastText");
            var dict = ReadDictionary(c, args, encodingErrors, hasPruneTable: !preMagic);
            cancellation.ThrowIfCancellationRequested();
            bool quantInput = !preMagic && c.Byte("the quantization flag") != 0;
            if (!quantInput && dict.IsPruned)
                throw c.Error("the dictionary is pruned but the input matrix is not quantized: fastText refuses such a file too (an old .ftz; download the current one)");
            input = quantInput ? ReadQuantMatrix(c, "input") : ReadDenseMatrix(c, "input", memoryMap);
            bool qout = !preMagic && c.Byte("the output quantization flag") != 0;
            output = quantInput && qout ? ReadQuantMatrix(c, "output") : ReadDenseMatrix(c, "output", memoryMap: false);
            if (input.Cols != args.Dim || output.Cols != args.Dim)
                throw c.Error($"the matrices have {input.Cols} and {output.Cols} columns but the model's dimension is {args.Dim}");
            long expectedInputRows = dict.IsPruned ? dict.NWords + Math.Max(0, dict.PruneIdxSize) : dict.NWords + (long)args.Bucket;
            if (input.Rows < expectedInputRows)
                throw c.Error($"the input matrix has {input.Rows} rows but the dictionary needs {expectedInputRows} (words + buckets)");
            long expectedOutputRows = args.Model == FastTextModelKind.Supervised ? dict.NLabels : dict.NWords;
            if (output.Rows < expectedOutputRows && args.Loss != FastTextLoss.HierarchicalSoftmax)
                throw c.Error($"the output matrix has {output.Rows} rows but the model needs {expectedOutputRows}");
            if (c.Remaining != 0) throw c.Error($"{c.Remaining} bytes follow the output matrix: the file is corrupt or not a fastText model");
            var model = new FastTextModel(path, version, args, dict, input, output, quantInput, quantInput && qout);
            input = output = null;
            return model;
        }
        catch
        {
            input?.Dispose();
            output?.Dispose();
            throw;
        }
        finally
        {
            file.Dispose();
        }
    }

    private static FastTextArgs ReadArgs(Cursor c, int version)
    {
        int dim = c.Int32("dim"), ws = c.Int32("ws"), epoch = c.Int32("epoch"), minCount = c.Int32("minCount"), neg = c.Int32("neg"),
            wordNgrams = c.Int32("wordNgrams"), loss = c.Int32("loss"), model = c.Int32("model"), bucket = c.Int32("bucket"),
            minn = c.Int32("minn"), maxn = c.Int32("maxn"), lrUpdateRate = c.Int32("lrUpdateRate");
        double t = c.Double("t");
        if (dim <= 0 || dim > LoadSupport.MaxDimension) throw c.Error($"dimension {dim} is impossible (1 to {LoadSupport.MaxDimension})");
        if (loss is < 1 or > 4) throw c.Error($"unknown loss {loss} (1 = hs, 2 = ns, 3 = softmax, 4 = ova): not a fastText model or a newer version");
        if (model is < 1 or > 3) throw c.Error($"unknown model kind {model} (1 = cbow, 2 = skipgram, 3 = supervised)");
        if (bucket < 0 || minn < 0 || maxn < 0 || maxn > 64 || wordNgrams < 0 || wordNgrams > 1024)
            throw c.Error($"implausible arguments (bucket {bucket}, minn {minn}, maxn {maxn}, wordNgrams {wordNgrams}): the file is corrupt");
        // fastText: "old supervised models do not use char ngrams".
        if (version == 11 && model == (int)FastTextModelKind.Supervised) maxn = 0;
        return new FastTextArgs
        {
            Dim = dim, WindowSize = ws, Epoch = epoch, MinCount = minCount, Negatives = neg, WordNgrams = wordNgrams,
            Loss = (FastTextLoss)loss, Model = (FastTextModelKind)model, Bucket = bucket, MinN = minn, MaxN = maxn,
            LrUpdateRate = lrUpdateRate, SamplingThreshold = t,
        };
    }

    private static FastTextDictionary ReadDictionary(Cursor c, FastTextArgs args, EncodingErrorMode encodingErrors, bool hasPruneTable)
    {
        int size = c.Int32("the dictionary size"), nwords = c.Int32("the word count"), nlabels = c.Int32("the label count");
        long ntokens = c.Int64("the token count"), pruneIdxSize = hasPruneTable ? c.Int64("the pruning table size") : -1;
        // Each entry takes at least a NUL, an 8-byte count and a 1-byte type.
        if (size < 0 || nwords < 0 || nlabels < 0 || (long)nwords + nlabels != size || size > c.Remaining / 10)
            throw c.Error($"dictionary of {size} entries ({nwords} words + {nlabels} labels) is impossible in the {c.Remaining} bytes left");
        var words = new string[size];
        var bytes = new byte[size][];
        var counts = new long[size];
        var types = new byte[size];
        int replaced = 0;
        for (int i = 0; i < size; i++)
        {
            long at = c.Position;
            var w = c.CString($"dictionary entry {i}", 1 << 20);
            bytes[i] = w.ToArray();
            words[i] = LoadSupport.DecodeWord(w, encodingErrors, c.Path, at, null, ref replaced);
            counts[i] = c.Int64("a word count");
            types[i] = c.Byte("an entry type");
            if (types[i] > 1) throw c.Error($"dictionary entry {i} ('{words[i]}') has type {types[i]} (0 = word, 1 = label): the file is corrupt");
        }
        for (int i = 0; i < size; i++)
            if ((types[i] == 1) != (i >= nwords))
                throw c.Error($"dictionary entry {i} is a {(types[i] == 1 ? "label" : "word")} but words must come before the {nlabels} labels");
        Dictionary<int, int>? prune = null;
        if (pruneIdxSize > 0)
        {
            if (pruneIdxSize > c.Remaining / 8) throw c.Error($"pruning table of {pruneIdxSize} entries does not fit in the {c.Remaining} bytes left");
            prune = new Dictionary<int, int>((int)pruneIdxSize);
            for (long i = 0; i < pruneIdxSize; i++)
            {
                int first = c.Int32("the pruning table"), second = c.Int32("the pruning table");
                prune[first] = second;
            }
        }
        return new FastTextDictionary(args, words, bytes, counts, types, nwords, nlabels, ntokens, pruneIdxSize, prune);
    }

    private static DenseFastTextMatrix ReadDenseMatrix(Cursor c, string name, bool memoryMap)
    {
        long m = c.Int64($"the {name} matrix rows"), n = c.Int64($"the {name} matrix columns");
        if (m < 0 || n <= 0 || n > LoadSupport.MaxDimension || m > int.MaxValue)
            throw c.Error($"the {name} matrix is {m} × {n}: impossible");
        c.Need(m * n * 4, $"the {name} matrix ({m} × {n} floats)");
        long at = c.Position;
        c.Position += m * n * 4;
        VectorStorage storage;
        if (memoryMap)
        {
            // A mapping of its own: the reader's mapping is still needed for what follows the matrix.
            var own = MappedFile.Open(c.Path);
            try { storage = own.DetachAsStorage(at, (int)m, (int)n, VectorPrecision.Float32, null); }
            finally { own.Dispose(); }
        }
        else
        {
            storage = VectorStorage.Allocate((int)m, (int)n, VectorPrecision.Float32);
            Buffer.MemoryCopy(c.File.Data + at, storage.RowPointer(0), m * n * 4, m * n * 4);
        }
        return new DenseFastTextMatrix(storage);
    }

    private static QuantFastTextMatrix ReadQuantMatrix(Cursor c, string name)
    {
        bool qnorm = c.Byte($"the {name} matrix qnorm flag") != 0;
        long m = c.Int64($"the {name} matrix rows"), n = c.Int64($"the {name} matrix columns");
        int codeSize = c.Int32($"the {name} matrix code size");
        if (m < 0 || m > int.MaxValue || n <= 0 || n > LoadSupport.MaxDimension || codeSize < 0)
            throw c.Error($"the quantized {name} matrix is {m} × {n} with {codeSize} code bytes: impossible");
        c.Need(codeSize, $"the {name} matrix codes");
        var codes = c.File.Span(c.Position, codeSize).ToArray();
        c.Position += codeSize;
        var pq = ReadQuantizer(c, name);
        if (pq.Dim != n || (long)pq.NSubq * m != codeSize)
            throw c.Error($"the {name} matrix quantizer (dim {pq.Dim}, {pq.NSubq} sub-vectors) does not fit a {m} × {n} matrix with {codeSize} code bytes");
        byte[]? normCodes = null;
        ProductQuantizer? npq = null;
        if (qnorm)
        {
            c.Need(m, $"the {name} matrix norm codes");
            normCodes = c.File.Span(c.Position, (int)m).ToArray();
            c.Position += m;
            npq = ReadQuantizer(c, name + " norm");
            if (npq.Dim != 1) throw c.Error($"the {name} norm quantizer has dimension {npq.Dim}, expected 1");
        }
        return new QuantFastTextMatrix { Rows = m, Cols = (int)n, Codes = codes, Quantizer = pq, NormCodes = normCodes, NormQuantizer = npq };
    }

    private static ProductQuantizer ReadQuantizer(Cursor c, string name)
    {
        int dim = c.Int32($"the {name} quantizer"), nsubq = c.Int32($"the {name} quantizer"), dsub = c.Int32($"the {name} quantizer"),
            lastdsub = c.Int32($"the {name} quantizer");
        if (dim <= 0 || dim > LoadSupport.MaxDimension || dsub <= 0 || nsubq != (dim + dsub - 1) / dsub
            || lastdsub != (dim % dsub == 0 ? dsub : dim % dsub))
            throw c.Error($"the {name} quantizer (dim {dim}, {nsubq} sub-vectors of {dsub}, last {lastdsub}) is inconsistent");
        long floats = (long)dim * ProductQuantizer.CentroidsPerSubspace;
        c.Need(floats * 4, $"the {name} centroids");
        var centroids = new float[floats];
        c.File.Span(c.Position, floats * 4).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(centroids.AsSpan()));
        c.Position += floats * 4;
        return new ProductQuantizer { Dim = dim, NSubq = nsubq, DSub = dsub, LastDSub = lastdsub, Centroids = centroids };
    }
}
