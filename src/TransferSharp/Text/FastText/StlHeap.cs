namespace TransferSharp.Text.FastText;

/// <summary>
/// fastText's top-k selection, reproduced to the order of ties: a heap kept with libstdc++'s std::push_heap,
/// std::pop_heap and std::sort_heap under fastText's comparator (<c>l.first &gt; r.first</c>). Ties are common —
/// a one-vs-all classifier's probabilities come from a 512-entry sigmoid table — and which of two equal
/// labels fastText prints first depends on exactly these sift operations.
/// </summary>
internal sealed class StlHeap(int k)
{
    private readonly List<(float Score, int Index)> _heap = new(k + 1);

    public int Count => _heap.Count;

    /// <summary>The heap's front (the smallest score kept).</summary>
    public float Front => _heap[0].Score;

    private static bool Comp((float Score, int Index) l, (float Score, int Index) r) => l.Score > r.Score;

    /// <summary>fastText's loop body: skip when full and worse than the front; push; pop when over k.</summary>
    public void Offer(float score, int index)
    {
        if (_heap.Count == k && score < _heap[0].Score) return;
        _heap.Add((score, index));
        PushHeap(_heap.Count);
        if (_heap.Count > k)
        {
            PopHeap(_heap.Count);
            _heap.RemoveAt(_heap.Count - 1);
        }
    }

    /// <summary>std::sort_heap: best first.</summary>
    public List<(float Score, int Index)> Sorted()
    {
        for (int last = _heap.Count; last > 1; last--) PopHeap(last);
        return _heap;
    }

    private void PushHeap(int length) => SiftUp(length - 1, 0, _heap[length - 1]);

    private void SiftUp(int hole, int top, (float, int) value)
    {
        int parent = (hole - 1) / 2;
        while (hole > top && Comp(_heap[parent], value))
        {
            _heap[hole] = _heap[parent];
            hole = parent;
            parent = (hole - 1) / 2;
        }
        _heap[hole] = value;
    }

    private void PopHeap(int length)
    {
        if (length <= 1) return;
        int result = length - 1;
        var value = _heap[result];
        _heap[result] = _heap[0];
        AdjustHeap(0, result, value);
    }

    private void AdjustHeap(int hole, int length, (float, int) value)
    {
        int top = hole, child = hole;
        while (child < (length - 1) / 2)
        {
            child = 2 * (child + 1);
            if (Comp(_heap[child], _heap[child - 1])) child--;
            _heap[hole] = _heap[child];
            hole = child;
        }
        if ((length & 1) == 0 && child == (length - 2) / 2)
        {
            child = 2 * (child + 1);
            _heap[hole] = _heap[child - 1];
            hole = child - 1;
        }
        SiftUp(hole, top, value);
    }
}
