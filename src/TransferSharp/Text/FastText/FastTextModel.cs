using TransferSharp.Text.Formats;

namespace TransferSharp.Text.FastText;

/// <summary>A label and its probability, as <c>fasttext predict-prob</c> prints them.</summary>
public readonly record struct LabelPrediction(string Label, float Probability);

/// <summary>The result of <see cref="FastTextModel.Test"/>, as <c>fasttext test</c> prints it.</summary>
/// <param name="Examples">Lines with at least one known label and one input row (N).</param>
/// <param name="Precision">Correct predictions / predictions (P@k).</param>
/// <param name="Recall">Correct predictions / gold labels (R@k).</param>
/// <param name="K">Labels predicted per line.</param>
public sealed record FastTextTestResult(int Examples, double Precision, double Recall, int K);

/// <summary>The character n-grams of a word and the input-matrix rows fastText averages for its vector.</summary>
/// <param name="Subwords">The word itself first when it is in the vocabulary, then its n-grams with the &lt; &gt; markers.</param>
/// <param name="Rows">Input rows: the word id, then <c>nwords + hash % bucket</c> per n-gram.</param>
public sealed record FastTextSubwords(IReadOnlyList<string> Subwords, IReadOnlyList<int> Rows);

/// <summary>
/// A fastText model file (.bin or quantized .ftz) used the way the <c>fasttext</c> tool uses it: word vectors for
/// any word (out-of-vocabulary words from their character n-grams), sentence vectors, nearest neighbours,
/// analogies, and — for classifiers — label prediction with probabilities. The arithmetic follows fastText
/// 0.9.2 step by step in float32, so results agree with <c>fasttext print-word-vectors</c>,
/// <c>print-sentence-vectors</c>, <c>nn</c>, <c>analogies</c> and <c>predict-prob</c> to float rounding.
/// </summary>
public sealed class FastTextModel : IDisposable
{
    private readonly FastTextDictionary _dict;
    private readonly IFastTextMatrix _input;
    private readonly IFastTextMatrix _output;
    private readonly Lazy<float[]> _normalizedWordVectors;
    private readonly Lazy<LabelTree?> _tree;
    private static readonly float[] SigmoidTable = BuildSigmoidTable();

    internal FastTextModel(string path, int version, FastTextArgs args, FastTextDictionary dict, IFastTextMatrix input, IFastTextMatrix output,
        bool quantized, bool quantizedOutput)
    {
        Path = path;
        Version = version;
        Args = args;
        _dict = dict;
        _input = input;
        _output = output;
        IsQuantized = quantized;
        IsOutputQuantized = quantizedOutput;
        Words = new ArraySegment<string>(dict.Words, 0, dict.NWords);
        Labels = new ArraySegment<string>(dict.Words, dict.NWords, dict.NLabels);
        _normalizedWordVectors = new Lazy<float[]>(ComputeNormalizedWordVectors);
        _tree = new Lazy<LabelTree?>(() => args.Loss == FastTextLoss.HierarchicalSoftmax ? new LabelTree(TargetCounts()) : null);
    }

    /// <summary>Reads a .bin or .ftz model. With <paramref name="memoryMap"/> a dense input matrix is served from the
    /// file instead of being copied. Throws <see cref="WordVectorsFormatException"/> naming the file for a
    /// wrong magic, an unknown version, a truncated or inconsistent file.</summary>
    public static FastTextModel Load(string path, bool memoryMap = false, EncodingErrorMode encodingErrors = EncodingErrorMode.Fail) =>
        FastTextReader.Read(path, memoryMap, encodingErrors);

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The file format version (12 for fastText 0.9; 0 for a file of fastText before the format had a version).</summary>
    public int Version { get; }

    /// <summary>The training arguments stored in the file.</summary>
    public FastTextArgs Args { get; }

    /// <summary>Vector dimension.</summary>
    public int Dimension => Args.Dim;

    /// <summary>True for a product-quantized input matrix (.ftz).</summary>
    public bool IsQuantized { get; }

    /// <summary>True when the output matrix is quantized too (<c>-qout</c>).</summary>
    public bool IsOutputQuantized { get; }

    /// <summary>True for a classifier.</summary>
    public bool IsSupervised => Args.Model == FastTextModelKind.Supervised;

    /// <summary>The vocabulary in dictionary order (including "&lt;/s&gt;", the end-of-line token).</summary>
    public IReadOnlyList<string> Words { get; }

    /// <summary>The labels of a classifier (with their "__label__" prefix), in dictionary order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Tokens seen in training.</summary>
    public long TokenCount => _dict.NTokens;

    /// <summary>The id of a vocabulary word, or -1.</summary>
    public int GetWordId(string word)
    {
        int id = _dict.GetId(word);
        return id >= 0 && id < _dict.NWords ? id : -1;
    }

    /// <summary>How often a vocabulary word occurred in the training data (0 for a word outside the vocabulary):
    /// with <see cref="TokenCount"/>, the word's unigram probability (SIF weights use it).</summary>
    public long GetWordCount(string word)
    {
        int id = GetWordId(word);
        return id < 0 ? 0 : _dict.Counts[id];
    }

    /// <summary>The word's subwords and input rows (fastText's <c>getSubwords</c>).</summary>
    public FastTextSubwords GetSubwords(string word)
    {
        var rows = new List<int>();
        var subwords = new List<string>();
        _dict.GetSubwords(word, rows, subwords);
        return new FastTextSubwords(subwords, rows);
    }

    /// <summary>The word's vector as <c>fasttext print-word-vectors</c> computes it: the mean of the input rows
    /// of the word (if known) and its character n-grams; zero when it has none.</summary>
    public float[] GetWordVector(string word)
    {
        var v = new float[Dimension];
        GetWordVector(word, v);
        return v;
    }

    /// <summary>Writes the word's vector into <paramref name="destination"/> (length ≥ <see cref="Dimension"/>).</summary>
    public void GetWordVector(string word, Span<float> destination)
    {
        var rows = new List<int>();
        int id = _dict.GetId(word);
        if (id >= 0) _dict.GetWordRows(id, rows);
        else _dict.GetSubwords(word, rows);
        AverageRows(rows, destination[..Dimension]);
    }

    internal void GetWordVector(int id, Span<float> destination, List<int> scratch)
    {
        scratch.Clear();
        _dict.GetWordRows(id, scratch);
        AverageRows(scratch, destination[..Dimension]);
    }

    private void AverageRows(List<int> rows, Span<float> v)
    {
        v.Clear();
        foreach (int r in rows) _input.AddRowTo(v, r);
        if (rows.Count > 0) Scale(v, (float)(1.0 / rows.Count));
    }

    /// <summary>
    /// The sentence vector of one line as <c>fasttext print-sentence-vectors</c> computes it. Unsupervised
    /// models: the mean of the unit-length word vectors of the whitespace-separated tokens (zero vectors
    /// skipped). Classifiers: the mean of the input rows of the line (words, n-grams, "&lt;/s&gt;").
    /// </summary>
    public float[] GetSentenceVector(string line)
    {
        var sentence = new float[Dimension];
        if (IsSupervised)
        {
            var rows = new List<int>();
            _dict.GetLine(StripNewline(line), rows, null);
            AverageRows(rows, sentence);
            return sentence;
        }
        var v = new float[Dimension];
        int count = 0;
        foreach (var word in StripNewline(line).Split([' ', '\t', '\v', '\f', '\r'], StringSplitOptions.RemoveEmptyEntries))
        {
            GetWordVector(word, v);
            float norm = Norm(v);
            if (norm > 0)
            {
                Scale(v, (float)(1.0 / norm));
                for (int j = 0; j < v.Length; j++) sentence[j] += v[j];
                count++;
            }
        }
        if (count > 0) Scale(sentence, (float)(1.0 / count));
        return sentence;
    }

    private static string StripNewline(string line)
    {
        int nl = line.IndexOf('\n');
        return nl < 0 ? line : line[..nl];
    }

    /// <summary>The k vocabulary words closest to <paramref name="word"/> by cosine (the word itself excluded;
    /// "&lt;/s&gt;" included), as <c>fasttext nn</c>.</summary>
    public IReadOnlyList<WordScore> NearestNeighbors(string word, int k = 10) =>
        Nearest(GetWordVector(word), k, [word]);

    /// <summary>The k words closest to A − B + C (each unit-normalised), A, B and C excluded, as
    /// <c>fasttext analogies</c> (which reads "A B C"; so "men man woman" asks for men − man + woman).</summary>
    public IReadOnlyList<WordScore> Analogies(string a, string b, string c, int k = 10)
    {
        var query = new float[Dimension];
        var buffer = new float[Dimension];
        foreach (var (w, sign) in new[] { (a, 1.0), (b, -1.0), (c, 1.0) })
        {
            GetWordVector(w, buffer);
            float s = (float)(sign / (Norm(buffer) + 1e-8));
            for (int j = 0; j < query.Length; j++) query[j] += s * buffer[j];
        }
        return Nearest(query, k, [a, b, c]);
    }

    private IReadOnlyList<WordScore> Nearest(float[] query, int k, string[] banned)
    {
        var matrix = _normalizedWordVectors.Value;
        float queryNorm = Norm(query);
        if (Math.Abs(queryNorm) < 1e-8) queryNorm = 1;
        var banSet = new HashSet<string>(banned, StringComparer.Ordinal);
        var top = new StlHeap(k);
        int dim = Dimension;
        for (int i = 0; i < _dict.NWords; i++)
        {
            if (banSet.Contains(_dict.Words[i])) continue;
            float dp = 0;
            int o = i * dim;
            for (int j = 0; j < dim; j++) dp += matrix[o + j] * query[j];
            top.Offer(dp / queryNorm, i);
        }
        return top.Sorted().Select(e => new WordScore(_dict.Words[e.Index], e.Score)).ToList();
    }

    private float[] ComputeNormalizedWordVectors()
    {
        int dim = Dimension, n = _dict.NWords;
        if ((long)n * dim > Array.MaxLength) throw new InvalidOperationException($"{n} × {dim} word vectors do not fit one array");
        var matrix = new float[n * dim];
        Parallel.For(0, n, () => (new float[dim], new List<int>()), (i, _, state) =>
        {
            var (v, rows) = state;
            GetWordVector(i, v, rows);
            float norm = Norm(v);
            if (norm > 0)
            {
                float a = (float)(1.0 / norm);
                for (int j = 0; j < dim; j++) matrix[i * dim + j] = a * v[j];
            }
            return state;
        }, _ => { });
        return matrix;
    }

    /// <summary>
    /// The k most probable labels of one line of text, as <c>fasttext predict-prob MODEL - k [threshold]</c>
    /// prints them (the line gets fastText's end-of-line token; probabilities below the threshold are left out).
    /// A line without any known word or n-gram gives no labels.
    /// </summary>
    public IReadOnlyList<LabelPrediction> Predict(string line, int k = 1, float threshold = 0f)
    {
        if (!IsSupervised) throw new TransferSharpException($"{Path} is an unsupervised ({Args.ModelName}) model: it has no labels to predict");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), "k needs to be 1 or higher");
        var rows = new List<int>();
        _dict.GetLine(StripNewline(line), rows, null);
        return PredictRows(rows, k, threshold).Select(p => new LabelPrediction(Labels[p.Index], MathF.Exp(p.Score))).ToList();
    }

    private List<(float Score, int Index)> PredictRows(List<int> rows, int k, float threshold)
    {
        if (rows.Count == 0) return [];
        var hidden = new float[Dimension];
        AverageRows(rows, hidden);
        var top = new StlHeap(k);
        if (Args.Loss == FastTextLoss.HierarchicalSoftmax)
        {
            var tree = _tree.Value!;
            tree.Search(k, threshold, hidden, _output, top);
            return top.Sorted().Select(e => (e.Score, e.Index)).ToList();
        }
        int osz = (int)_output.Rows;
        var output = new float[osz];
        for (int i = 0; i < osz; i++) output[i] = _output.DotRow(hidden, i);
        if (Args.Loss == FastTextLoss.Softmax)
        {
            float max = output[0], z = 0;
            for (int i = 0; i < osz; i++) max = Math.Max(output[i], max);
            for (int i = 0; i < osz; i++)
            {
                output[i] = MathF.Exp(output[i] - max);
                z += output[i];
            }
            for (int i = 0; i < osz; i++) output[i] /= z;
        }
        else
        {
            for (int i = 0; i < osz; i++) output[i] = Sigmoid(output[i]);
        }
        for (int i = 0; i < osz; i++)
        {
            if (output[i] < threshold) continue;
            top.Offer(StdLog(output[i]), i);
        }
        return top.Sorted().Select(e => (e.Score, e.Index)).ToList();
    }

    /// <summary>Precision and recall at k over a file in fastText's format (<c>__label__x text</c> per line),
    /// as <c>fasttext test MODEL FILE k threshold</c> reports them.</summary>
    public FastTextTestResult Test(string path, int k = 1, float threshold = 0f)
    {
        if (!IsSupervised) throw new TransferSharpException($"{Path} is an unsupervised ({Args.ModelName}) model: it has no labels");
        int examples = 0;
        long predicted = 0, gold = 0, correct = 0;
        var rows = new List<int>();
        var labels = new List<int>();
        // Strict UTF-8: File.ReadLines would turn a bad byte into U+FFFD, a word the model never saw, silently.
        foreach (var line in IO.StrictUtf8.ReadLines(path))
        {
            _dict.GetLine(line, rows, labels);
            if (labels.Count == 0 || rows.Count == 0) continue;
            var predictions = PredictRows(rows, k, threshold);
            examples++;
            gold += labels.Count;
            predicted += predictions.Count;
            correct += predictions.Count(p => labels.Contains(p.Index));
        }
        return new FastTextTestResult(examples, predicted == 0 ? double.NaN : (double)correct / predicted, gold == 0 ? double.NaN : (double)correct / gold, k);
    }

    /// <summary>Every vocabulary word's vector (as in the .vec fastText writes beside the .bin), for
    /// <see cref="WordVectors"/>; rows are computed in parallel.</summary>
    internal VectorStorage ComputeWordVectorStorage(VectorPrecision precision, int rows)
    {
        int dim = Dimension;
        var storage = VectorStorage.Allocate(rows, dim, precision);
        Parallel.For(0, rows, () => (new float[dim], new List<int>()), (i, _, state) =>
        {
            GetWordVector(i, state.Item1, state.Item2);
            storage.SetRow(i, state.Item1);
            return state;
        }, _ => { });
        return storage;
    }

    private List<long> TargetCounts()
    {
        if (IsSupervised) return _dict.LabelCounts();
        return _dict.Counts.Take(_dict.NWords).ToList();
    }

    internal static float StdLog(float x) => (float)Math.Log(x + 1e-5);

    internal static float Norm(ReadOnlySpan<float> v)
    {
        float sum = 0;
        foreach (float x in v) sum += x * x;
        return MathF.Sqrt(sum);
    }

    private static void Scale(Span<float> v, float a)
    {
        for (int j = 0; j < v.Length; j++) v[j] *= a;
    }

    private static float[] BuildSigmoidTable()
    {
        var table = new float[513];
        for (int i = 0; i < table.Length; i++)
        {
            float x = (float)(i * 2 * 8) / 512 - 8;
            table[i] = (float)(1.0 / (1.0 + Math.Exp(-x)));
        }
        return table;
    }

    private static float Sigmoid(float x)
    {
        if (x < -8) return 0f;
        if (x > 8) return 1f;
        return SigmoidTable[(long)((x + 8) * 512 / 8 / 2)];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _input.Dispose();
        _output.Dispose();
    }

    /// <summary>fastText's Huffman tree over the labels, for hierarchical-softmax classifiers.</summary>
    private sealed class LabelTree
    {
        private readonly int[] _left, _right;
        private readonly int _osz;

        public LabelTree(List<long> counts)
        {
            _osz = counts.Count;
            int size = 2 * _osz - 1;
            _left = Enumerable.Repeat(-1, size).ToArray();
            _right = Enumerable.Repeat(-1, size).ToArray();
            var count = Enumerable.Repeat(1e15, size).ToArray();
            for (int i = 0; i < _osz; i++) count[i] = counts[i];
            int leaf = _osz - 1, node = _osz;
            for (int i = _osz; i < size; i++)
            {
                var mini = new int[2];
                for (int j = 0; j < 2; j++)
                {
                    if (leaf >= 0 && count[leaf] < count[node]) mini[j] = leaf--;
                    else mini[j] = node++;
                }
                _left[i] = mini[0];
                _right[i] = mini[1];
                count[i] = count[mini[0]] + count[mini[1]];
            }
        }

        public void Search(int k, float threshold, float[] hidden, IFastTextMatrix output, StlHeap top) =>
            Dfs(k, threshold, 2 * _osz - 2, 0f, hidden, output, top);

        private void Dfs(int k, float threshold, int node, float score, float[] hidden, IFastTextMatrix output, StlHeap top)
        {
            if (score < StdLog(threshold)) return;
            if (top.Count == k && score < top.Front) return;
            if (_left[node] == -1 && _right[node] == -1)
            {
                top.Offer(score, node);
                return;
            }
            float f = output.DotRow(hidden, node - _osz);
            f = (float)(1.0 / (1 + MathF.Exp(-f)));
            Dfs(k, threshold, _left[node], score + StdLog((float)(1.0 - f)), hidden, output, top);
            Dfs(k, threshold, _right[node], score + StdLog(f), hidden, output, top);
        }
    }
}
