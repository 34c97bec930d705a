namespace TransferSharp.Text.FastText;

/// <summary>The kind of fastText model (fastText's <c>model_name</c>).</summary>
public enum FastTextModelKind
{
    /// <summary>Continuous bag of words (unsupervised).</summary>
    Cbow = 1,

    /// <summary>Skip-gram (unsupervised).</summary>
    SkipGram = 2,

    /// <summary>A text classifier.</summary>
    Supervised = 3,
}

/// <summary>The training loss (fastText's <c>loss_name</c>); for a classifier it decides how labels are scored.</summary>
public enum FastTextLoss
{
    /// <summary>Hierarchical softmax (a Huffman tree over the labels).</summary>
    HierarchicalSoftmax = 1,

    /// <summary>Negative sampling (independent sigmoids at prediction time).</summary>
    NegativeSampling = 2,

    /// <summary>Softmax over all labels.</summary>
    Softmax = 3,

    /// <summary>One-vs-all: an independent sigmoid per label.</summary>
    OneVsAll = 4,
}

/// <summary>
/// The training arguments a fastText model file stores (the rest — learning rate, seed, threads — are not
/// stored). Names follow the command-line options.
/// </summary>
public sealed record FastTextArgs
{
    /// <summary>Vector dimension (<c>-dim</c>).</summary>
    public int Dim { get; init; }

    /// <summary>Context window (<c>-ws</c>).</summary>
    public int WindowSize { get; init; }

    /// <summary>Training epochs (<c>-epoch</c>).</summary>
    public int Epoch { get; init; }

    /// <summary>Minimal word count (<c>-minCount</c>).</summary>
    public int MinCount { get; init; }

    /// <summary>Negatives sampled (<c>-neg</c>).</summary>
    public int Negatives { get; init; }

    /// <summary>Word n-gram length for classifiers (<c>-wordNgrams</c>; 1 = words only).</summary>
    public int WordNgrams { get; init; }

    /// <summary>Loss (<c>-loss</c>).</summary>
    public FastTextLoss Loss { get; init; }

    /// <summary>Model kind (cbow, skipgram, supervised).</summary>
    public FastTextModelKind Model { get; init; }

    /// <summary>Hash buckets for character and word n-grams (<c>-bucket</c>).</summary>
    public int Bucket { get; init; }

    /// <summary>Shortest character n-gram (<c>-minn</c>).</summary>
    public int MinN { get; init; }

    /// <summary>Longest character n-gram (<c>-maxn</c>; 0 = no subwords).</summary>
    public int MaxN { get; init; }

    /// <summary>Learning-rate update interval (<c>-lrUpdateRate</c>).</summary>
    public int LrUpdateRate { get; init; }

    /// <summary>Sampling threshold (<c>-t</c>).</summary>
    public double SamplingThreshold { get; init; }

    /// <summary>The loss as the fastText Python binding names it (hs, ns, softmax, ova).</summary>
    public string LossName => Loss switch
    {
        FastTextLoss.HierarchicalSoftmax => "hs",
        FastTextLoss.NegativeSampling => "ns",
        FastTextLoss.Softmax => "softmax",
        FastTextLoss.OneVsAll => "ova",
        _ => Loss.ToString(),
    };

    /// <summary>The model kind as the fastText Python binding names it (cbow, skipgram, supervised).</summary>
    public string ModelName => Model switch
    {
        FastTextModelKind.Cbow => "cbow",
        FastTextModelKind.SkipGram => "skipgram",
        FastTextModelKind.Supervised => "supervised",
        _ => Model.ToString(),
    };
}
