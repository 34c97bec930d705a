using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using TransferSharp.Runtime;
using TransferSharp.Text.Transformers;

namespace TransferSharp.Text.Classification;

/// <summary>The networks: each maps token ids [batch, time] and lengths [batch] to logits [batch, classes]. The
/// word-vector networks' embedding is <c>embedding.weight</c>, with row 0 (padding) kept at zero; the encoder network has
/// its pretrained encoder instead.</summary>
internal abstract class TextNetwork : Module<Tensor, Tensor, Tensor>
{
    private readonly double _dropout;

    protected TextNetwork(string name, double dropout) : base(name) { _dropout = dropout; }

    /// <summary>The word-embedding layer (null for the encoder network).</summary>
    public abstract Embedding? EmbeddingLayer { get; }

    /// <summary>The embedding's parameter name in every network.</summary>
    public const string EmbeddingWeight = "embedding.weight";

    /// <summary>Where dropout masks come from in training mode (the training run's; null outside one).</summary>
    public virtual Generator? Generator { get; set; }

    /// <summary>Draws every parameter but the embedding (which <see cref="TextClassifier"/> fills itself) from
    /// <paramref name="generator"/> with PyTorch's default distributions. TorchSharp's constructors drew them from
    /// LibTorch's global generator, which is the host's to seed.</summary>
    public abstract void ResetParameters(Generator generator);

    /// <summary>PyTorch's default for Linear and Conv1d weights (Kaiming-uniform, a = √5) and biases: uniform ±1/√fan_in.</summary>
    protected static void ResetFanIn(Tensor weight, Tensor? bias, Generator generator)
    {
        using var _ = no_grad();
        double bound = 1 / Math.Sqrt(weight.numel() / weight.shape[0]);
        weight.uniform_(-bound, bound, generator);
        bias?.uniform_(-bound, bound, generator);
    }

    /// <summary>Dropout in training mode, its mask drawn from <see cref="Generator"/>.</summary>
    protected Tensor Dropout(Tensor x)
    {
        if (!training || _dropout <= 0) return x;
        return SeededDropout.Apply(x, _dropout, Generator ?? throw new InvalidOperationException("a text network trains without a generator"));
    }

    /// <summary>Batches are padded to at least this many tokens (the CNN's widest filter).</summary>
    public virtual int MinimumLength => 1;

    public static TextNetwork Create(TextModelKind kind, int vocabulary, int dim, int classes, TextClassifierOptions o) =>
        KeepingHostGenerator<TextNetwork>(() => kind switch
        {
            TextModelKind.Bow => new BagOfEmbeddings(vocabulary, dim, classes, o.Dropout),
            TextModelKind.Cnn => new KimCnn(vocabulary, dim, classes, o.CnnFilters, o.CnnKernelSizes, o.Dropout),
            TextModelKind.BiLstm => new BiLstmClassifier(vocabulary, dim, classes, o.LstmHidden, o.Dropout),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "a word-vector text model"),
        });

    /// <summary>A linear head (after dropout) on the pooled output of <paramref name="encoder"/>, which the network takes over.</summary>
    public static EncoderNetwork Create(TextEncoder encoder, int classes, TextClassifierOptions o) =>
        KeepingHostGenerator(() => new EncoderNetwork(encoder, classes, o.Dropout));

    private static T KeepingHostGenerator<T>(Func<T> create)
    {
        // TorchSharp's layer constructors draw their initial values from LibTorch's global generator, which is the host's:
        // its state is put back afterwards, so building a network leaves the host's random stream where it was (the
        // values drawn are overwritten by ResetParameters from the run's own generator).
        using var hostState = torch.random.get_rng_state();
        try
        {
            return create();
        }
        finally
        {
            torch.random.set_rng_state(hostState);
        }
    }
}

internal sealed class BagOfEmbeddings : TextNetwork
{
    private readonly Embedding embedding;
    private readonly Linear fc;

    public BagOfEmbeddings(int vocabulary, int dim, int classes, double dropoutRate) : base("bow", dropoutRate)
    {
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        fc = Linear(dim, classes);
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;

    public override void ResetParameters(Generator generator) => ResetFanIn(fc.weight!, fc.bias, generator);

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var summed = embedding.call(ids).sum(1);
        var mean = summed / lengths.unsqueeze(1).to_type(summed.dtype);
        return fc.call(Dropout(mean)).MoveToOuterDisposeScope();
    }
}

internal sealed class KimCnn : TextNetwork
{
    private readonly Embedding embedding;
    private readonly ModuleList<Conv1d> convs;
    private readonly Linear fc;
    private readonly int _widest;

    public KimCnn(int vocabulary, int dim, int classes, int filters, IReadOnlyList<int> widths, double dropoutRate) : base("cnn", dropoutRate)
    {
        if (widths.Count == 0 || widths.Any(w => w < 1)) throw new ArgumentException("CNN filter widths must be positive", nameof(widths));
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        convs = new ModuleList<Conv1d>(widths.Select(w => Conv1d(dim, filters, w)).ToArray());
        fc = Linear(filters * widths.Count, classes);
        _widest = widths.Max();
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;
    public override int MinimumLength => _widest;

    public override void ResetParameters(Generator generator)
    {
        foreach (var conv in convs) ResetFanIn(conv.weight!, conv.bias, generator);
        ResetFanIn(fc.weight!, fc.bias, generator);
    }

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
        return fc.call(Dropout(cat(pooled, 1))).MoveToOuterDisposeScope();
    }
}

internal sealed class BiLstmClassifier : TextNetwork
{
    private readonly Embedding embedding;
    private readonly LSTM lstm;
    private readonly Linear fc;
    private readonly int _hidden;

    public BiLstmClassifier(int vocabulary, int dim, int classes, int hidden, double dropoutRate) : base("bilstm", dropoutRate)
    {
        _hidden = hidden;
        embedding = Embedding(vocabulary, dim, padding_idx: 0);
        lstm = LSTM(dim, hidden, numLayers: 1, bidirectional: true, batchFirst: true);
        fc = Linear(2 * hidden, classes);
        RegisterComponents();
    }

    public override Embedding EmbeddingLayer => embedding;

    /// <summary>PyTorch's LSTM default: every weight and bias uniform ±1/√hidden.</summary>
    public override void ResetParameters(Generator generator)
    {
        using (no_grad())
        {
            double bound = 1 / Math.Sqrt(_hidden);
            foreach (var p in lstm.parameters()) p.uniform_(-bound, bound, generator);
        }
        ResetFanIn(fc.weight!, fc.bias, generator);
    }

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var x = embedding.call(ids);
        // Packed, so that the backward direction starts at each text's last word, not at its padding.
        using var packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first: true, enforce_sorted: false);
        var (output, h, c) = lstm.call(packed);
        output.Dispose();
        var last = cat([h[0], h[1]], 1);
        return fc.call(Dropout(last)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A pretrained transformer encoder (its graph registered as <c>encoder</c>) with dropout and a linear layer (<c>head</c>)
/// on its pooled output. The attention mask comes from the lengths, so padding ids are never attended to nor pooled.
/// </summary>
internal sealed class EncoderNetwork : TextNetwork
{
    /// <summary>Prefix of the encoder's parameter names.</summary>
    public const string EncoderPrefix = "encoder.";

    private readonly Transformers.TextEncoder _encoder;
    private readonly Module encoder;
    private readonly Linear head;

    public EncoderNetwork(Transformers.TextEncoder textEncoder, int classes, double dropoutRate) : base("encoder-classifier", dropoutRate)
    {
        _encoder = textEncoder;
        encoder = textEncoder.Module;
        head = Linear(textEncoder.Dimension, classes);
        RegisterComponents();
    }

    public Transformers.TextEncoder Encoder => _encoder;

    /// <summary>The head's weight [classes, hidden] and bias [classes].</summary>
    public (Tensor Weight, Tensor Bias) Head => (head.weight!, head.bias!);

    public override Embedding? EmbeddingLayer => null;

    /// <summary>Dropout masks of the encoder's own dropout layers (a Hugging Face checkpoint has them; an ONNX export
    /// has none) come from the same generator as the head's.</summary>
    public override Generator? Generator
    {
        get => base.Generator;
        set
        {
            base.Generator = value;
            _encoder.Module.Generator = value;
        }
    }

    public override void ResetParameters(Generator generator) => ResetFanIn(head.weight!, head.bias, generator);

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var mask = arange(ids.shape[1], device: ids.device).unsqueeze(0).lt(lengths.unsqueeze(1)).to_type(ScalarType.Int64);
        var pooled = _encoder.Forward(ids, mask);
        return head.call(Dropout(pooled)).MoveToOuterDisposeScope();
    }
}
