using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace TransferSharp.Text.Classification;

/// <summary>The networks: each maps token ids [batch, time] and lengths [batch] to logits [batch, classes]. The
/// embedding is <c>embedding.weight</c> in every one, with row 0 (padding) kept at zero.</summary>
internal abstract class TextNetwork : Module<Tensor, Tensor, Tensor>
{
    protected TextNetwork(string name) : base(name) { }

    public abstract Embedding EmbeddingLayer { get; }

    /// <summary>Batches are padded to at least this many tokens (the CNN's widest filter).</summary>
    public virtual int MinimumLength => 1;

    public static TextNetwork Create(TextModelKind kind, int vocabulary, int dim, int classes, TextClassifierOptions o) => kind switch
    {
        TextModelKind.Bow => new BagOfEmbeddings(vocabulary, dim, classes, o.Dropout),
        TextModelKind.Cnn => new KimCnn(vocabulary, dim, classes, o.CnnFilters, o.CnnKernelSizes, o.Dropout),
        TextModelKind.BiLstm => new BiLstmClassifier(vocabulary, dim, classes, o.LstmHidden, o.Dropout),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown text model"),
    };
}

internal sealed class BagOfEmbeddings : TextNetwork
{
    private readonly Embedding embedding;
    private readonly Dropout dropout;
    private readonly Linear fc;

    public BagOfEmbeddings(int vocabulary, int dim, int classes, double dropoutRate) : base("bow")
    {
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        dropout = Dropout(dropoutRate);
        fc = Linear(dim, classes);
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var summed = embedding.call(ids).sum(1);
        var mean = summed / lengths.unsqueeze(1).to_type(summed.dtype);
        return fc.call(dropout.call(mean)).MoveToOuterDisposeScope();
    }
}

internal sealed class KimCnn : TextNetwork
{
    private readonly Embedding embedding;
    private readonly ModuleList<Conv1d> convs;
    private readonly Dropout dropout;
    private readonly Linear fc;
    private readonly int _widest;

    public KimCnn(int vocabulary, int dim, int classes, int filters, IReadOnlyList<int> widths, double dropoutRate) : base("cnn")
    {
        if (widths.Count == 0 || widths.Any(w => w < 1)) throw new ArgumentException("CNN filter widths must be positive", nameof(widths));
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        convs = new ModuleList<Conv1d>(widths.Select(w => Conv1d(dim, filters, w)).ToArray());
        dropout = Dropout(dropoutRate);
        fc = Linear(filters * widths.Count, classes);
        _widest = widths.Max();
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;
    public override int MinimumLength => _widest;

    /// <summary>What <c>conv.call</c> computes on [N, dim, T], as windows times the flattened kernel on [N, T, dim] →
    /// [N, T − w + 1, filters]. LibTorch 2.10's oneDNN conv1d returned NaN here on an AMD EPYC with AVX-512 VP2INTERSECT
    /// (in both memory layouts); a matrix product is exact everywhere and keeps the Conv1d parameters and their names.</summary>
    private static Tensor Correlate(Tensor x, Conv1d conv)
    {
        var weight = conv.weight!; // [filters, dim, w]
        long filters = weight.shape[0], width = weight.shape[2];
        var windows = x.unfold(1, width, 1); // [N, T − w + 1, dim, w]
        var flat = windows.flatten(2); // dim-major, then w: the order of weight.reshape(filters, dim · w)
        var y = flat.matmul(weight.reshape(filters, -1).t());
        return conv.bias is { } bias ? y + bias : y;
    }

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var x = embedding.call(ids); // [N, T, dim]
        var pooled = convs.Select(conv => functional.relu(Correlate(x, conv)).amax([1])).ToList();
        return fc.call(dropout.call(cat(pooled, 1))).MoveToOuterDisposeScope();
    }
}

internal sealed class BiLstmClassifier : TextNetwork
{
    private readonly Embedding embedding;
    private readonly LSTM lstm;
    private readonly Dropout dropout;
    private readonly Linear fc;

    public BiLstmClassifier(int vocabulary, int dim, int classes, int hidden, double dropoutRate) : base("bilstm")
    {
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        lstm = LSTM(dim, hidden, numLayers: 1, bidirectional: true, batchFirst: true);
        dropout = Dropout(dropoutRate);
        fc = Linear(2 * hidden, classes);
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var x = embedding.call(ids);
        // Packed, so that the backward direction starts at each text's last word, not at its padding.
        using var packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first: true, enforce_sorted: false);
        var (output, h, c) = lstm.call(packed);
        output.Dispose();
        var last = cat([h[0], h[1]], 1);
        return fc.call(dropout.call(last)).MoveToOuterDisposeScope();
    }
}
