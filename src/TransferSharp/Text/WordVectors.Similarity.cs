using System.Numerics.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Text;

public sealed partial class WordVectors
{
    private const int RowsPerTask = 8192;
    private const int RowsPerBatchBlock = 16384;
    private const int QueriesPerChunk = 1024;

    /// <summary>The Euclidean norm of every row, computed once (in parallel) on first use.</summary>
    internal float[] Norms
    {
        get
        {
            if (_norms is { } n) return n;
            var norms = new float[Count];
            Parallel.For(0, (Count + RowsPerTask - 1) / RowsPerTask, block =>
            {
                int end = Math.Min(Count, (block + 1) * RowsPerTask);
                for (int i = block * RowsPerTask; i < end; i++) norms[i] = _storage.Norm(i);
            });
            return _norms = norms;
        }
    }

    /// <summary>The Euclidean norm of row <paramref name="index"/>.</summary>
    public float Norm(int index)
    {
        CheckIndex(index);
        return Norms[index];
    }

    /// <summary>The word's vector scaled to unit length (gensim's <c>get_vector(word, norm=True)</c>).</summary>
    public float[] GetUnitVector(string word)
    {
        var v = new float[Dimension];
        UnitVectorInto(word, v, out _);
        return v;
    }

    /// <summary>The top-N words most similar to <paramref name="word"/> by cosine, the word itself excluded
    /// (gensim's <c>most_similar(word, topn)</c>).</summary>
    public IReadOnlyList<WordScore> MostSimilar(string word, int topN = 10, int? restrictVocab = null) =>
        MostSimilar([word], null, topN, restrictVocab);

    /// <summary>
    /// gensim's <c>most_similar(positive, negative, topn, restrict_vocab)</c> (3CosAdd): the mean of the
    /// unit-normalised positive vectors and the negated unit-normalised negative ones, itself normalised, is
    /// compared by cosine with every vector (only the first <paramref name="restrictVocab"/> when given); the
    /// input words are excluded. <c>positive: [king, woman], negative: [man]</c> asks king − man + woman.
    /// </summary>
    public IReadOnlyList<WordScore> MostSimilar(IEnumerable<string> positive, IEnumerable<string>? negative = null, int topN = 10, int? restrictVocab = null)
    {
        var pos = positive?.ToList() ?? [];
        var neg = negative?.ToList() ?? [];
        if (pos.Count + neg.Count == 0) throw new TransferSharpException("cannot compute a mean of no words: give at least one positive or negative word");
        if (topN < 1) return [];
        var mean = new float[Dimension];
        var exclude = new List<int>();
        var v = new float[Dimension];
        foreach (var (word, weight) in pos.Select(w => (w, 1f)).Concat(neg.Select(w => (w, -1f))))
        {
            UnitVectorInto(word, v, out int index);
            if (index >= 0) exclude.Add(index);
            for (int j = 0; j < mean.Length; j++) mean[j] += weight * v[j];
        }
        return Rank(NormalizedMean(mean, pos.Count + neg.Count), topN, restrictVocab, exclude);
    }

    /// <summary>The top-N words by cosine with a vector (gensim's <c>similar_by_vector</c>); nothing excluded.</summary>
    public IReadOnlyList<WordScore> MostSimilar(ReadOnlySpan<float> vector, int topN = 10, int? restrictVocab = null)
    {
        CheckQuery(vector);
        if (topN < 1) return [];
        return Rank(NormalizedMean(vector.ToArray(), 1), topN, restrictVocab, []);
    }

    /// <summary>Many 3CosAdd questions (positive b, c; negative a, by row) at once: each as <see cref="MostSimilar(IEnumerable{string}, IEnumerable{string}?, int, int?)"/> would answer it.</summary>
    internal IReadOnlyList<IReadOnlyList<WordScore>> AnalogiesByIndex(IReadOnlyList<(int A, int B, int C)> questions, int topN, int? restrictVocab)
    {
        int dim = Dimension;
        var units = new float[questions.Count * dim];
        var v = new float[dim];
        for (int q = 0; q < questions.Count; q++)
        {
            var mean = new float[dim];
            foreach (var (index, weight) in new[] { (questions[q].B, 1f), (questions[q].C, 1f), (questions[q].A, -1f) })
            {
                UnitRowInto(index, v);
                for (int j = 0; j < dim; j++) mean[j] += weight * v[j];
            }
            NormalizedMean(mean, 3).CopyTo(units, q * dim);
        }
        return BatchRank(units, questions.Count, topN, restrictVocab, questions.Select(q => new[] { q.B, q.C, q.A }).ToList());
    }

    /// <summary>
    /// gensim's <c>most_similar_cosmul</c> (3CosMul, Levy and Goldberg 2014): each cosine is shifted to [0, 1]
    /// as (1 + cos) / 2, the positive ones multiplied, divided by the product of the negative ones + 1e-6.
    /// Unlike gensim 4.2, which ignores it here, <paramref name="restrictVocab"/> limits the search.
    /// </summary>
    public IReadOnlyList<WordScore> MostSimilarCosMul(IEnumerable<string> positive, IEnumerable<string>? negative = null, int topN = 10, int? restrictVocab = null)
    {
        var pos = positive?.ToList() ?? [];
        var neg = negative?.ToList() ?? [];
        if (pos.Count == 0) throw new TransferSharpException("cannot compute similarity with no positive word");
        if (topN < 1) return [];
        var exclude = new List<int>();
        float[] Unit(string w)
        {
            var u = new float[Dimension];
            UnitVectorInto(w, u, out int index);
            if (index >= 0) exclude.Add(index);
            return u;
        }
        var posVectors = pos.Select(Unit).ToList();
        var negVectors = neg.Select(Unit).ToList();
        int end = RowsEnd(restrictVocab);
        var norms = Norms;
        var scores = new float[end];
        ForEachBlock(end, (start, stop) =>
        {
            for (int i = start; i < stop; i++)
            {
                float p = 1f, n = 1f;
                foreach (var t in posVectors) p *= (1 + _storage.Dot(i, t) / norms[i]) / 2;
                foreach (var t in negVectors) n *= (1 + _storage.Dot(i, t) / norms[i]) / 2;
                scores[i] = negVectors.Count == 0 ? p / (1f + 0.000001f) : p / (n + 0.000001f);
            }
        });
        return TopFromScores(scores, topN, exclude);
    }

    /// <summary>Cosine similarity of two words (gensim's <c>similarity</c>). fastText-backed vectors accept
    /// words outside the vocabulary.</summary>
    public float Similarity(string word1, string word2)
    {
        var a = UnitVec(GetVector(word1));
        var b = UnitVec(GetVector(word2));
        return TensorPrimitives.Dot(a, b);
    }

    /// <summary>
    /// gensim's <c>rank_by_centrality</c>: the words present (others are ignored) ranked by the dot product of
    /// their unit vector with the normalised mean of all their unit vectors, most central first.
    /// </summary>
    public IReadOnlyList<WordScore> RankByCentrality(IEnumerable<string> words)
    {
        var used = words.Where(w => Contains(w) || Subwords is not null).ToList();
        if (used.Count == 0) throw new TransferSharpException("cannot select a word from an empty list (none of the words is in the vocabulary)");
        var vectors = used.Select(w =>
        {
            var u = new float[Dimension];
            UnitVectorInto(w, u, out _);
            return u;
        }).ToList();
        var mean = new float[Dimension];
        foreach (var u in vectors)
            for (int j = 0; j < mean.Length; j++) mean[j] += u[j];
        var centre = NormalizedMean(mean, used.Count);
        return used.Select((w, i) => new WordScore(w, TensorPrimitives.Dot(vectors[i], centre)))
            .OrderByDescending(s => s.Score).ThenByDescending(s => s.Word, StringComparer.Ordinal).ToList();
    }

    /// <summary>The word furthest from the others (gensim 4.2's <c>doesnt_match</c>: the last of
    /// <see cref="RankByCentrality"/>); words not in the vocabulary are ignored.</summary>
    public string DoesntMatch(IEnumerable<string> words) => RankByCentrality(words)[^1].Word;

    /// <summary>
    /// The top-N neighbours of many words at once, each excluding itself — the same answers as
    /// <see cref="MostSimilar(string, int, int?)"/> per word, computed as one matrix product per block of
    /// rows (TorchSharp, all cores) instead of one pass over the matrix per word.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<WordScore>> NearestNeighbors(IReadOnlyList<string> words, int topN = 10, int? restrictVocab = null)
    {
        var queries = new float[words.Count * Dimension];
        var exclude = new int[words.Count][];
        var v = new float[Dimension];
        for (int q = 0; q < words.Count; q++)
        {
            UnitVectorInto(words[q], v, out int index);
            exclude[q] = index >= 0 ? [index] : [];
            NormalizedMean(v, 1).CopyTo(queries, q * Dimension);
        }
        return BatchRank(queries, words.Count, topN, restrictVocab, exclude);
    }

    /// <summary>The top-N words by cosine for each of <paramref name="count"/> query vectors stored row by row
    /// in <paramref name="queries"/> (nothing excluded), as one matrix product per block of rows.</summary>
    public IReadOnlyList<IReadOnlyList<WordScore>> NearestNeighbors(ReadOnlySpan<float> queries, int count, int topN = 10, int? restrictVocab = null)
    {
        if ((long)count * Dimension != queries.Length) throw new ArgumentException($"{count} queries of dimension {Dimension} need {(long)count * Dimension} values, got {queries.Length}", nameof(queries));
        var units = new float[queries.Length];
        for (int q = 0; q < count; q++) NormalizedMean(queries.Slice(q * Dimension, Dimension).ToArray(), 1).CopyTo(units, q * Dimension);
        return BatchRank(units, count, topN, restrictVocab, []);
    }

    /// <summary>
    /// Top-N rows by cosine for many unit queries: row blocks are copied once each into a float32 buffer shared
    /// with TorchSharp, multiplied with chunks of queries (scores stay at most 1024 × 16384), and each chunk's
    /// top-k per block is merged per query. <paramref name="exclude"/> lists rows each query must not return.
    /// </summary>
    private IReadOnlyList<IReadOnlyList<WordScore>> BatchRank(float[] units, int count, int topN, int? restrictVocab, IReadOnlyList<int[]> exclude)
    {
        var results = new IReadOnlyList<WordScore>[count];
        if (count == 0) return results;
        if (topN < 1)
        {
            Array.Fill(results, []);
            return results;
        }
        int end = RowsEnd(restrictVocab);
        int extra = exclude.Count == 0 ? 0 : exclude.Max(e => e.Length);
        var tops = Enumerable.Range(0, count).Select(_ => new TopK(topN + extra)).ToArray();
        var norms = Norms;
        int dim = Dimension;
        int blockRows = Math.Max(1, Math.Min(RowsPerBatchBlock, end));
        var block = new float[(long)blockRows * dim];
        var rowNorms = new float[blockRows];
        using (NewDisposeScope())
        using (no_grad())
        {
            var chunks = new List<(int First, torch.Tensor Queries)>();
            for (int first = 0; first < count; first += QueriesPerChunk)
            {
                int n = Math.Min(QueriesPerChunk, count - first);
                chunks.Add((first, torch.tensor(units.AsSpan(first * dim, n * dim).ToArray(), [n, dim])));
            }
            using var blockTensor = frombuffer(block, ScalarType.Float32, block.Length, 0, false);
            using var blockMatrix = blockTensor.view(blockRows, dim);
            using var scaleTensor = frombuffer(rowNorms, ScalarType.Float32, blockRows, 0, false);
            for (int start = 0; start < end; start += blockRows)
            {
                int rows = Math.Min(blockRows, end - start);
                for (int i = 0; i < rows; i++)
                {
                    _storage.CopyRow(start + i, block.AsSpan(i * dim, dim));
                    rowNorms[i] = norms[start + i];
                }
                foreach (var (first, queries) in chunks)
                {
                    using var scope = NewDisposeScope();
                    var m = rows == blockRows ? blockMatrix : blockMatrix.narrow(0, 0, rows);
                    var norm = rows == blockRows ? scaleTensor : scaleTensor.narrow(0, 0, rows);
                    var scores = queries.mm(m.t()).div_(norm);
                    var (values, indices) = scores.topk(Math.Min(topN + extra, rows), dim: 1, largest: true, sorted: false);
                    var vals = values.data<float>().ToArray();
                    var idx = indices.data<long>().ToArray();
                    int kk = (int)values.shape[1];
                    for (int r = 0; r < queries.shape[0]; r++)
                        for (int j = 0; j < kk; j++)
                            tops[first + r].Add(vals[r * kk + j], start + (int)idx[r * kk + j]);
                }
            }
        }
        for (int r = 0; r < count; r++)
        {
            var excluded = exclude.Count > r ? exclude[r] : [];
            results[r] = tops[r].Sorted().Where(e => Array.IndexOf(excluded, e.Index) < 0).Take(topN)
                .Select(e => new WordScore(_words[e.Index], e.Score)).ToList();
        }
        return results;
    }

    private IReadOnlyList<WordScore> Rank(float[] unitQuery, int topN, int? restrictVocab, List<int> exclude)
    {
        int end = RowsEnd(restrictVocab);
        var norms = Norms;
        var scores = new float[end];
        ForEachBlock(end, (start, stop) =>
        {
            if (_storage.Precision == VectorPrecision.Float32)
            {
                unsafe
                {
                    fixed (float* q = unitQuery) Kernels.CosineScores(_storage, q, norms, scores, start, stop);
                }
            }
            else for (int i = start; i < stop; i++) scores[i] = _storage.Dot(i, unitQuery) / norms[i];
        });
        return TopFromScores(scores, topN, exclude);
    }

    private IReadOnlyList<WordScore> TopFromScores(float[] scores, int topN, List<int> exclude)
    {
        var top = new TopK(topN + exclude.Count);
        for (int i = 0; i < scores.Length; i++) top.Add(scores[i], i);
        var excluded = exclude.ToHashSet();
        return top.Sorted().Where(e => !excluded.Contains(e.Index)).Take(topN).Select(e => new WordScore(_words[e.Index], e.Score)).ToList();
    }

    private static void ForEachBlock(int rows, Action<int, int> body)
    {
        int blocks = (rows + RowsPerTask - 1) / RowsPerTask;
        if (blocks <= 1) body(0, rows);
        else Parallel.For(0, blocks, b => body(b * RowsPerTask, Math.Min(rows, (b + 1) * RowsPerTask)));
    }

    private int RowsEnd(int? restrictVocab) => restrictVocab is { } r and > 0 ? Math.Min(r, Count) : Count;

    /// <summary>The unit vector of a word as gensim's get_vector(norm=True): the row divided by its norm
    /// (for a fastText out-of-vocabulary word, its subword vector divided by its norm).</summary>
    private void UnitVectorInto(string word, Span<float> destination, out int index)
    {
        index = IndexOf(word);
        if (index >= 0)
        {
            UnitRowInto(index, destination);
            return;
        }
        if (!TryGetVector(word, destination)) throw new WordNotFoundException(word, LoadInfo.Path);
        float norm = TensorPrimitives.Norm(destination[..Dimension]);
        for (int j = 0; j < Dimension; j++) destination[j] /= norm;
    }

    private void UnitRowInto(int index, Span<float> destination)
    {
        _storage.CopyRow(index, destination);
        float norm = Norms[index];
        for (int j = 0; j < Dimension; j++) destination[j] /= norm;
    }

    /// <summary>gensim's get_mean_vector(…, post_normalize=True): divide by the total weight, then unitvec.</summary>
    private static float[] NormalizedMean(float[] sum, float totalWeight)
    {
        for (int j = 0; j < sum.Length; j++) sum[j] /= totalWeight;
        return UnitVec(sum);
    }

    /// <summary>gensim's matutils.unitvec for float32: multiply by the float32 reciprocal of the L2 norm.</summary>
    private static float[] UnitVec(float[] v)
    {
        float norm = TensorPrimitives.Norm(v);
        if (norm > 0)
        {
            float scale = (float)(1.0 / norm);
            for (int j = 0; j < v.Length; j++) v[j] *= scale;
        }
        return v;
    }

    private void CheckQuery(ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dimension) throw new ArgumentException($"the vector has {vector.Length} values, the word vectors {Dimension}", nameof(vector));
    }
}
