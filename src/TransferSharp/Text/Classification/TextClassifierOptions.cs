using TransferSharp.Training;

namespace TransferSharp.Text.Classification;

/// <summary>The text classifier architectures.</summary>
public enum TextModelKind
{
    /// <summary>Bag of embeddings: the mean of the word embeddings of a text, then a linear layer (fastText's
    /// classifier, without n-grams).</summary>
    Bow,

    /// <summary>Kim (2014): 1-D convolutions of several widths over the embeddings, ReLU, max over time,
    /// dropout, a linear layer.</summary>
    Cnn,

    /// <summary>A bidirectional LSTM over the embeddings; its final forward and backward states, dropout, a
    /// linear layer.</summary>
    BiLstm,

    /// <summary>A pretrained transformer encoder (<see cref="Transformers.TextEncoder"/>, e.g. all-MiniLM-L6-v2): its
    /// tokenizer, its pooled output, dropout and a linear layer; trained by <see cref="TextClassifierOptions.Mode"/>.
    /// Start from <see cref="TextClassifierOptions.ForEncoder"/>.</summary>
    Encoder,
}

/// <summary>How to build and train a text classifier. Defaults suit a few thousand short texts.</summary>
public sealed record TextClassifierOptions
{
    /// <summary>The architecture.</summary>
    public TextModelKind Model { get; init; } = TextModelKind.Bow;

    /// <summary>Encoder kind: <see cref="TrainMode.Head"/> (the encoder frozen, its pooled embeddings computed once, the
    /// head fitted on them by L-BFGS logistic regression with L2 chosen on validation data, as vision's head mode) or
    /// <see cref="TrainMode.FineTune"/> (the encoder trains too, at <see cref="EncoderLearningRate"/>, with AdamW).</summary>
    public TrainMode Mode { get; init; } = TrainMode.FineTune;

    /// <summary>Encoder kind, fine-tuning: the encoder's learning rate (the head's is <see cref="LearningRate"/>).</summary>
    public double EncoderLearningRate { get; init; } = 5e-5;

    /// <summary>Keep the pretrained embeddings fixed (feature extraction) instead of fine-tuning them.</summary>
    public bool FreezeEmbeddings { get; init; }

    /// <summary>Learning rate of the layers above the embeddings (Adam).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Learning rate of the embeddings when they are fine-tuned (default: <see cref="LearningRate"/>).</summary>
    public double? EmbeddingLearningRate { get; init; }

    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Texts per step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Tokens kept per text (the rest is cut).</summary>
    public int MaxLength { get; init; } = 256;

    /// <summary>Training-data words seen fewer times are unknown.</summary>
    public int MinCount { get; init; } = 1;

    /// <summary>Largest vocabulary (most frequent words), padding and unknown included; null = no limit.</summary>
    public int? MaxVocabulary { get; init; }

    /// <summary>Lower-case texts before tokenising (for lower-cased vectors such as GloVe).</summary>
    public bool Lowercase { get; init; }

    /// <summary>Embedding size when no pretrained vectors are given (with vectors, theirs).</summary>
    public int EmbeddingDimension { get; init; } = 100;

    /// <summary>Words without a pretrained vector (and every word, without vectors) start uniform in
    /// ±this; null = match the spread of the pretrained vectors (Kim 2014), or 0.25 without vectors.</summary>
    public double? RandomInitRange { get; init; }

    /// <summary>CNN: filters per width.</summary>
    public int CnnFilters { get; init; } = 100;

    /// <summary>CNN: filter widths in tokens.</summary>
    public IReadOnlyList<int> CnnKernelSizes { get; init; } = [3, 4, 5];

    /// <summary>BiLSTM: hidden units per direction.</summary>
    public int LstmHidden { get; init; } = 128;

    /// <summary>Dropout before the output layer.</summary>
    public double Dropout { get; init; } = 0.5;

    /// <summary>L2 weight decay, added to the gradient (Adam, as PyTorch's <c>Adam</c> applies it); biases and other 1-D
    /// parameters take none, as in vision training (the shared optimizer's rule).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Learning-rate schedule after the warm-up (the one vision training uses); constant by default.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Constant;

    /// <summary>Linear warm-up of the learning rates from 0, in epochs (fractions allowed).</summary>
    public double WarmupEpochs { get; init; }

    /// <summary>Early stopping: end training after this many epochs without a better validation score (0: never; needs
    /// validation data). The best epoch's weights are kept either way.</summary>
    public int Patience { get; init; }

    /// <summary>Seed for initialisation, shuffling and dropout.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// The defaults for a pretrained encoder (<see cref="TextModelKind.Encoder"/>): texts cut at 128 tokens, dropout 0.1
    /// before the head; fine-tuning 3 epochs of AdamW, the head at 1e-3 and the encoder at 5e-5 (measured above 2e-5), warm-up over the
    /// first 10 % of the steps, then linear decay to 0 (BERT's recipe; the numbers behind them are in
    /// docs/text-transformers.md).
    /// </summary>
    public static TextClassifierOptions ForEncoder(TrainMode mode = TrainMode.FineTune) => new()
    {
        Model = TextModelKind.Encoder,
        Mode = mode,
        Epochs = 3,
        BatchSize = 32,
        LearningRate = 1e-3,
        EncoderLearningRate = 5e-5,
        MaxLength = 128,
        Dropout = 0.1,
        Schedule = ScheduleKind.Linear,
        WarmupEpochs = 0.3,
    };

    /// <summary>The settings of the shared training loop: one stage of <see cref="Epochs"/>, Adam with L2 added to the
    /// gradient (<see cref="WeightDecay"/>; AdamW with decoupled decay for an encoder), the schedule, early stopping.
    /// Vision's knobs a text classifier has no use for (label smoothing, the L2 loss term, accumulation) keep their
    /// neutral values.</summary>
    internal TrainOptions ToTrainOptions() => new()
    {
        Mode = TrainMode.Head, // one stage, whatever the network (the embedding is frozen or not from the start)
        Epochs = Epochs,
        BatchSize = BatchSize,
        Optimizer = Model == TextModelKind.Encoder ? OptimizerKind.AdamW : OptimizerKind.Adam,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        Momentum = 0,
        Schedule = Schedule,
        WarmupEpochs = WarmupEpochs,
        Patience = Patience,
        Seed = Seed,
        ValidationSplit = 0,
        Augmentation = null,
    };
}

/// <summary>Where each row of the embedding matrix came from.</summary>
/// <param name="Pretrained">Words found in the vectors as they are.</param>
/// <param name="Lowercased">Words found only in lower case.</param>
/// <param name="Subword">Words the vectors lack, given a fastText subword vector.</param>
/// <param name="Random">Words with no vector, initialised at random.</param>
public sealed record EmbeddingCoverage(int Pretrained, int Lowercased, int Subword, int Random)
{
    /// <summary>Share of the vocabulary (padding and unknown excluded) with a pretrained or subword vector.</summary>
    public double Coverage => Pretrained + Lowercased + Subword + Random == 0 ? 0 : (double)(Pretrained + Lowercased + Subword) / (Pretrained + Lowercased + Subword + Random);
}
