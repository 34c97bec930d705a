using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using static TorchSharp.torch;

namespace TransferSharp.Text.Classification;

/// <summary>
/// A text classifier whose embedding layer starts from pretrained word vectors: bag of embeddings, Kim's CNN or
/// a BiLSTM (<see cref="TextModelKind"/>), trained on TorchSharp with the embeddings frozen or fine-tuned at
/// their own learning rate. The vocabulary comes from the training data; words the vectors lack get a
/// fastText subword vector when the vectors came from a fastText model, otherwise a random one. Saved as one
/// .safetensors file whose metadata carries vocabulary, labels and settings.
/// </summary>
public sealed class TextClassifier : IDisposable
{
    /// <summary>The <c>format</c> value in the metadata of a saved classifier.</summary>
    public const string FormatName = "transfersharp.text-classifier";

    private readonly TextNetwork _network;

    private TextClassifier(TextNetwork network, TextVocabulary vocabulary, IReadOnlyList<string> labels, TextClassifierOptions options, int dimension)
    {
        _network = network;
        Vocabulary = vocabulary;
        Labels = labels;
        Options = options;
        EmbeddingDimension = dimension;
    }

    /// <summary>The vocabulary (index 0 padding, 1 unknown).</summary>
    public TextVocabulary Vocabulary { get; }

    /// <summary>The labels, in output order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The settings it was built and trained with.</summary>
    public TextClassifierOptions Options { get; }

    /// <summary>Embedding size.</summary>
    public int EmbeddingDimension { get; }

    /// <summary>Where the embedding rows came from (set by <see cref="Train"/>).</summary>
    public EmbeddingCoverage? Coverage { get; private set; }

    /// <summary>Per-epoch numbers of training (the shared <see cref="EpochRecord"/>; all in stage 1: text training has one
    /// stage). Empty for a loaded classifier.</summary>
    public IReadOnlyList<EpochRecord> History { get; private set; } = [];

    /// <summary>The epoch whose weights the classifier holds: the best validation accuracy (ties to the lower validation
    /// loss), or the last without validation data. 0 for a loaded classifier.</summary>
    public int BestEpoch { get; private set; }

    /// <summary>True when early stopping (<see cref="TextClassifierOptions.Patience"/>) ended training.</summary>
    public bool StoppedEarly { get; private set; }

    /// <summary>Trainable parameters (the embedding counts when it is fine-tuned).</summary>
    public long TrainableParameters => _network.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>
    /// Builds the vocabulary from <paramref name="train"/>, initialises the embedding from <paramref name="vectors"/>
    /// (random without them), and trains with the loop vision training uses. With <paramref name="validation"/>, the weights
    /// of the epoch with the best validation accuracy are kept, and <see cref="TextClassifierOptions.Patience"/> can stop
    /// early. <paramref name="run"/> sets the checkpoint written after every epoch (and whether to resume from it: a killed
    /// run continues exactly where it stopped), the progress and a callback per epoch. Cancellation stops between steps with
    /// <see cref="OperationCanceledException"/>; the last checkpoint stays intact.
    /// </summary>
    public static TextClassifier Train(TextDataset train, TextDataset? validation, WordVectors? vectors, TextClassifierOptions? options = null,
        TrainRunOptions? run = null, CancellationToken cancellation = default)
    {
        options ??= new TextClassifierOptions();
        Validate(options);
        if (train.Examples.Count == 0) throw new TransferSharpException("the training data is empty");
        var labels = train.Labels;
        var vocabulary = TextVocabulary.Build(train.Examples.Select(e => e.Text), options.MinCount, options.MaxVocabulary, options.Lowercase);
        int dim = vectors?.Dimension ?? options.EmbeddingDimension;
        var network = TextNetwork.Create(options.Model, vocabulary.Count, dim, labels.Count, options);
        var classifier = new TextClassifier(network, vocabulary, labels, options, dim);
        // A generator seeded from the options draws the initial weights (and the loop one per epoch for the dropout masks):
        // the same seed trains the same classifier in any process, whatever the host did with LibTorch's global generator.
        using var generator = new Generator(unchecked((ulong)options.Seed));
        try
        {
            network.ResetParameters(generator);
            classifier.Coverage = classifier.InitialiseEmbedding(vectors);
            classifier.Fit(train, validation, vectors, run ?? new TrainRunOptions(), cancellation);
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    private static void Validate(TextClassifierOptions o)
    {
        if (o.Epochs < 1) throw new InvalidOptionException("Epochs", "Epochs must be at least 1");
        if (o.BatchSize < 1) throw new InvalidOptionException("BatchSize", "BatchSize must be at least 1");
        if (o.MaxLength < 1) throw new InvalidOptionException("MaxLength", "MaxLength must be at least 1");
        if (o.LearningRate <= 0 || o.EmbeddingLearningRate is <= 0) throw new InvalidOptionException("LearningRate", "learning rates must be positive");
        if (o.Dropout is < 0 or >= 1) throw new InvalidOptionException("Dropout", "Dropout must be in [0, 1)");
        if (o.EmbeddingDimension < 1) throw new InvalidOptionException("EmbeddingDimension", "EmbeddingDimension must be at least 1");
        if (o.WarmupEpochs < 0) throw new InvalidOptionException("WarmupEpochs", "WarmupEpochs must be ≥ 0");
        o.ToTrainOptions().Validate();
    }

    /// <summary>Row 0 (padding) zero; each word's pretrained vector, else its lower-case form's, else its fastText
    /// subword vector, else uniform noise as wide as the pretrained values (Kim 2014).</summary>
    private EmbeddingCoverage InitialiseEmbedding(WordVectors? vectors)
    {
        int v = Vocabulary.Count, dim = EmbeddingDimension;
        var rng = new Random(Options.Seed);
        double range = Options.RandomInitRange ?? (vectors is null ? 0.25 : Math.Sqrt(3) * ValueSpread(vectors));
        var weights = new float[v * dim];
        int pretrained = 0, lowercased = 0, subword = 0, random = 0;
        for (int i = 1; i < v; i++)
        {
            var span = weights.AsSpan(i * dim, dim);
            var word = Vocabulary.Tokens[i];
            if (i >= 2 && vectors is not null && vectors.IndexOf(word) is >= 0 and var found) { vectors.CopyVector(found, span); pretrained++; continue; }
            if (i >= 2 && vectors is not null && vectors.IndexOf(word.ToLowerInvariant()) is >= 0 and var lower) { vectors.CopyVector(lower, span); lowercased++; continue; }
            if (i >= 2 && vectors?.Subwords is { } sub) { sub.GetWordVector(word, span); subword++; continue; }
            for (int j = 0; j < dim; j++) span[j] = (float)((rng.NextDouble() * 2 - 1) * range);
            if (i >= 2) random++;
        }
        using (no_grad())
        using (var source = torch.tensor(weights, [v, dim]))
            _network.EmbeddingLayer.weight!.copy_(source);
        if (Options.FreezeEmbeddings) _network.EmbeddingLayer.weight!.requires_grad = false;
        return new EmbeddingCoverage(pretrained, lowercased, subword, random);
    }

    /// <summary>Standard deviation of the vector values (from up to 10,000 rows spread over the vocabulary).</summary>
    private static double ValueSpread(WordVectors vectors)
    {
        int step = Math.Max(1, vectors.Count / 10_000);
        double sum = 0, sumSq = 0;
        long n = 0;
        var row = new float[vectors.Dimension];
        for (int i = 0; i < vectors.Count; i += step)
        {
            vectors.CopyVector(i, row);
            foreach (float x in row) { sum += x; sumSq += (double)x * x; n++; }
        }
        if (n == 0) return 0.25 / Math.Sqrt(3);
        double mean = sum / n;
        return Math.Sqrt(Math.Max(0, sumSq / n - mean * mean));
    }

    /// <summary>Trains through the shared loop (<see cref="TrainLoop"/>): one stage, Adam with coupled L2, the schedule
    /// with warm-up, early stopping, the best epoch's weights, and checkpoints a killed run resumes from exactly.</summary>
    private void Fit(TextDataset train, TextDataset? validation, WordVectors? vectors, TrainRunOptions run, CancellationToken cancellation)
    {
        var options = Options.ToTrainOptions();
        var task = new TrainingTask(this, train, validation, options);
        var state = TrainLoop.Run(task, options, Fingerprint(train, validation, vectors), run.Checkpoint, run.OnEpoch, run.Progress, cancellation);
        History = state.History;
        BestEpoch = state.BestEpoch;
        StoppedEarly = state.StoppedEarly;
        _network.eval();
        if (run.Checkpoint is { DeleteWhenDone: true, Path: { } cp } && File.Exists(cp)) File.Delete(cp);
    }

    /// <summary>What a checkpoint must match to be resumed: the settings, the data, the vocabulary and the vectors' shape.</summary>
    private string Fingerprint(TextDataset train, TextDataset? validation, WordVectors? vectors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var e in train.Examples.Concat(validation?.Examples ?? []))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(e.Label));
            hash.AppendData([0]);
            hash.AppendData(Encoding.UTF8.GetBytes(e.Text));
            hash.AppendData([0]);
        }
        return string.Join("\n", "text-classifier", JsonSerializer.Serialize(Options, Json), Convert.ToHexString(hash.GetHashAndReset()),
            train.Examples.Count, validation?.Examples.Count ?? 0, Vocabulary.Count, string.Join(",", Labels), $"{vectors?.Count ?? 0}x{EmbeddingDimension}");
    }

    /// <summary>A text classifier as the shared loop sees it: batches of token ids with their targets, the network's layers
    /// at <see cref="TextClassifierOptions.LearningRate"/>, the embedding (unless frozen) at its own rate.</summary>
    private sealed class TrainingTask : ITrainingTask<TokenBatch>
    {
        private readonly TextClassifier _owner;
        private readonly int[][] _texts, _validationTexts;
        private readonly long[] _targets, _validationTargets;
        private readonly TrainOptions _options;

        public TrainingTask(TextClassifier owner, TextDataset train, TextDataset? validation, TrainOptions options)
        {
            _owner = owner;
            _options = options;
            var labelIndex = owner.Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => (long)p.i, StringComparer.Ordinal);
            _texts = train.Examples.Select(e => owner.Vocabulary.Encode(e.Text, owner.Options.MaxLength)).ToArray();
            _targets = train.Examples.Select(e => labelIndex[e.Label]).ToArray();
            // Validation texts of a label the training data lacks cannot be scored by the loss; they would be misses in
            // every epoch alike, so leaving them out changes no choice of the best epoch.
            var known = (validation?.Examples ?? []).Where(e => labelIndex.ContainsKey(e.Label)).ToArray();
            _validationTexts = known.Select(e => owner.Vocabulary.Encode(e.Text, owner.Options.MaxLength)).ToArray();
            _validationTargets = known.Select(e => labelIndex[e.Label]).ToArray();
        }

        public nn.Module Module => _owner._network;
        public int TrainCount => _texts.Length;
        public bool HasValidation => _validationTexts.Length > 0;

        // The text options have no L2 penalty (TrainOptions.L2 stays 0); weight decay is the optimizer's.
        public IEnumerable<Tensor> L2Parameters => [];

        public Generator? DropoutGenerator { get => _owner._network.Generator; set => _owner._network.Generator = value; }

        // One stage: the embedding is frozen or trainable from the start (InitialiseEmbedding), the rest always trains.
        public void EnterStage(int stage) { }

        public IReadOnlyList<ParamGroup> ParamGroups(int stage, TrainOptions options)
        {
            // By name: named_parameters() hands out other wrapper objects than EmbeddingLayer.weight, so a reference test
            // never matched and the embedding trained at the body's rate.
            var named = _owner._network.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
            var groups = new List<ParamGroup> { new("body", named.Where(p => p.name != TextNetwork.EmbeddingWeight).ToArray(), options.LearningRate) };
            if (!_owner.Options.FreezeEmbeddings)
                groups.Add(new ParamGroup("embedding", named.Where(p => p.name == TextNetwork.EmbeddingWeight).ToArray(), _owner.Options.EmbeddingLearningRate ?? options.LearningRate));
            return groups;
        }

        public IEnumerable<(TokenBatch X, Tensor Y)> TrainBatches(int epoch, CancellationToken cancellation) =>
            Batches(_texts, _targets, Data.DataLoader.Order(_texts.Length, true, _options.Seed, epoch), _options.BatchSize);

        private IEnumerable<(TokenBatch X, Tensor Y)> Batches(int[][] texts, long[] targets, int[] order, int size)
        {
            for (int s = 0; s < order.Length; s += size)
            {
                var batch = order.AsSpan(s, Math.Min(size, order.Length - s)).ToArray();
                yield return (_owner.Batch(batch.Select(i => texts[i]).ToList()), torch.tensor(batch.Select(i => targets[i]).ToArray()));
            }
        }

        public Tensor Forward(TokenBatch x) => _owner._network.call(x.Ids, x.Lengths);

        public (double Loss, double Accuracy) Validate(IProgress<ProgressInfo>? progress, CancellationToken cancellation) =>
            Trainer.Score(Module, Batches(_validationTexts, _validationTargets, Enumerable.Range(0, _validationTexts.Length).ToArray(), 256), Forward,
                "validate", _validationTexts.Length, progress, cancellation);

        public bool Persist(string tensorName) => true;
    }

    /// <summary>Token ids padded to the batch's longest text (and at least the network's minimum) and the lengths.</summary>
    private TokenBatch Batch(IReadOnlyList<int[]> texts)
    {
        int t = Math.Max(_network.MinimumLength, texts.Max(x => x.Length));
        var ids = new long[texts.Count * t];
        var lengths = new long[texts.Count];
        for (int b = 0; b < texts.Count; b++)
        {
            for (int j = 0; j < texts[b].Length; j++) ids[b * t + j] = texts[b][j];
            lengths[b] = texts[b].Length;
        }
        return new TokenBatch(torch.tensor(ids, [texts.Count, t]), torch.tensor(lengths));
    }

    /// <summary>The <paramref name="k"/> most probable labels of each text (softmax probabilities).</summary>
    public IReadOnlyList<IReadOnlyList<(string Label, float Probability)>> Predict(IReadOnlyList<string> texts, int k = 1)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1");
        k = Math.Min(k, Labels.Count);
        var results = new List<IReadOnlyList<(string, float)>>(texts.Count);
        _network.eval();
        using var _ = no_grad();
        for (int start = 0; start < texts.Count; start += 256)
        {
            using var scope = NewDisposeScope();
            var chunk = texts.Skip(start).Take(256).Select(x => Vocabulary.Encode(x, Options.MaxLength)).ToList();
            var batch = Batch(chunk);
            var probabilities = nn.functional.softmax(_network.call(batch.Ids, batch.Lengths), 1);
            var (values, indices) = probabilities.topk(k, 1);
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            for (int b = 0; b < chunk.Count; b++)
                results.Add(Enumerable.Range(0, k).Select(j => (Labels[(int)ix[b * k + j]], v[b * k + j])).ToList());
        }
        return results;
    }

    /// <summary>Accuracy, macro F1, per-label precision/recall/F1 and the confusion matrix on labelled data: the report
    /// vision evaluation gives (<see cref="EvaluationReport.FromLabels"/>; labels the classifier does not know count as
    /// misses).</summary>
    public EvaluationReport Evaluate(TextDataset data)
    {
        var predicted = Predict(data.Examples.Select(e => e.Text).ToList(), 1).Select(p => p[0].Label).ToList();
        return EvaluationReport.FromLabels(data.Examples.Select(e => e.Label).ToList(), predicted);
    }

    private sealed record SavedSettings(int Version, TextModelKind Model, int EmbeddingDimension, int MaxLength, bool Lowercase, int CnnFilters,
        int[] CnnKernelSizes, int LstmHidden, double Dropout, TextClassifierOptions Training, EmbeddingCoverage? Coverage);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Writes the weights and, in the safetensors metadata, the vocabulary, labels and settings — to a
    /// temporary file renamed into place when complete.</summary>
    public void Save(string path)
    {
        var settings = new SavedSettings(1, Options.Model, EmbeddingDimension, Options.MaxLength, Options.Lowercase, Options.CnnFilters,
            [.. Options.CnnKernelSizes], Options.LstmHidden, Options.Dropout, Options, Coverage);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["settings"] = JsonSerializer.Serialize(settings, Json),
            ["labels"] = JsonSerializer.Serialize(Labels, Json),
            ["vocabulary"] = JsonSerializer.Serialize(Vocabulary.Tokens, Json),
        };
        SafeTensors.Write(path, _network.state_dict(), metadata);
    }

    /// <summary>Reads a classifier saved by <see cref="Save"/>. Throws <see cref="InvalidFileException"/> when the
    /// file is not one, or its tensors do not fit its settings.</summary>
    public static TextClassifier Load(string path)
    {
        using var dict = SafeTensors.Read(path);
        if (!dict.Metadata.TryGetValue("format", out var format) || format != FormatName)
            throw new InvalidFileException(path, $"not a TransferSharp text classifier (metadata 'format' is '{format ?? "missing"}', expected '{FormatName}')");
        SavedSettings settings;
        string[] labels, tokens;
        try
        {
            settings = JsonSerializer.Deserialize<SavedSettings>(dict.Metadata["settings"], Json) ?? throw new JsonException("null settings");
            labels = JsonSerializer.Deserialize<string[]>(dict.Metadata["labels"], Json) ?? throw new JsonException("null labels");
            tokens = JsonSerializer.Deserialize<string[]>(dict.Metadata["vocabulary"], Json) ?? throw new JsonException("null vocabulary");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new InvalidFileException(path, $"the classifier's metadata is damaged: {e.Message}", e);
        }
        if (settings.Version != 1) throw new InvalidFileException(path, $"text classifier version {settings.Version} is not supported (this build reads 1)");
        TextVocabulary vocabulary;
        try { vocabulary = new TextVocabulary(tokens, settings.Lowercase); }
        catch (ArgumentException e) { throw new InvalidFileException(path, e.Message, e); }
        var options = settings.Training with
        {
            Model = settings.Model, MaxLength = settings.MaxLength, Lowercase = settings.Lowercase, CnnFilters = settings.CnnFilters,
            CnnKernelSizes = settings.CnnKernelSizes, LstmHidden = settings.LstmHidden, Dropout = settings.Dropout,
        };
        var network = TextNetwork.Create(settings.Model, vocabulary.Count, settings.EmbeddingDimension, labels.Length, options);
        var classifier = new TextClassifier(network, vocabulary, labels, options, settings.EmbeddingDimension) { Coverage = settings.Coverage };
        try
        {
            // The settings rebuild the network, so its tensors must be exactly the file's.
            StateLoader.Load(network, dict, LoadPolicy.Exact, path);
            network.eval();
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _network.Dispose();
}

/// <summary>A batch of texts for a <see cref="TextNetwork"/>: token ids [batch, time], padded, and each text's length.</summary>
internal sealed record TokenBatch(Tensor Ids, Tensor Lengths) : IDisposable
{
    public void Dispose()
    {
        Ids.Dispose();
        Lengths.Dispose();
    }
}
