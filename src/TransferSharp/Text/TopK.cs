namespace TransferSharp.Text;

/// <summary>A word and a score (cosine similarity, or the 3CosMul objective).</summary>
public readonly record struct WordScore(string Word, float Score);

/// <summary>
/// The k best (score, index) pairs seen so far: a min-heap of size k, so each candidate that does not beat the
/// current k-th costs one comparison. NaN scores never enter. Ties keep the lower index, and the final order
/// is by score descending, then index ascending.
/// </summary>
internal sealed class TopK
{
    private sealed class WorstFirst : IComparer<(float Score, int Index)>
    {
        public static readonly WorstFirst Instance = new();

        public int Compare((float Score, int Index) a, (float Score, int Index) b) =>
            a.Score != b.Score ? a.Score.CompareTo(b.Score) : b.Index.CompareTo(a.Index);
    }

    private readonly int _k;
    private readonly PriorityQueue<(float Score, int Index), (float Score, int Index)> _heap;

    public TopK(int k)
    {
        _k = Math.Max(0, k);
        _heap = new PriorityQueue<(float, int), (float, int)>(Math.Min(_k, 1 << 16) + 1, WorstFirst.Instance);
    }

    public void Add(float score, int index)
    {
        if (_k == 0 || float.IsNaN(score)) return;
        if (_heap.Count < _k)
        {
            _heap.Enqueue((score, index), (score, index));
            return;
        }
        var worst = _heap.Peek();
        if (score > worst.Score || (score == worst.Score && index < worst.Index))
            _heap.EnqueueDequeue((score, index), (score, index));
    }

    public List<(float Score, int Index)> Sorted()
    {
        var list = _heap.UnorderedItems.Select(e => e.Element).ToList();
        list.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Index.CompareTo(b.Index));
        return list;
    }
}
