using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using TransferSharp.Text.Transformers;
using TransferSharp.Text.Transformers.Tokenization;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using static TorchSharp.torch;

namespace TransferSharp.Text.Classification;

/// <summary>
/// A text classifier on pretrained representations, in two families (<see cref="TextModelKind"/>). On word vectors: bag
/// of embeddings, Kim's CNN or a BiLSTM, trained on TorchSharp with the embeddings frozen or fine-tuned at their own
/// learning rate; the vocabulary comes from the training data, and words the vectors lack get a fastText subword vector
/// when the vectors came from a fastText model, otherwise a random one. On a pretrained transformer encoder
/// (<see cref="TextEncoder"/>): dropout and a linear head on its pooled output, fitted on cached embeddings of the frozen
/// encoder or fine-tuned with it (<see cref="TextClassifierOptions.Mode"/>; the <c>Train</c> overload that takes the encoder). Either is saved as one .safetensors file
/// whose metadata carries vocabulary (or tokenizer and encoder graph), labels and settings.
/// </summary>
public sealed class TextClassifier : IDisposable
{
    /// <summary>The <c>format</c> value in the metadata of a saved classifier.</summary>
    public const string FormatName = "transfersharp.text-classifier";

    private readonly TextNetwork _network;

    private TextClassifier(TextNetwork network, TextVocabulary? vocabulary, IReadOnlyList<string> labels, TextClassifierOptions options, int dimension)
    {
        _network = network;
        Vocabulary = vocabulary;
        Labels = labels;
        Options = options;
        EmbeddingDimension = dimension;
    }

    /// <summary>The word vocabulary (index 0 padding, 1 unknown) of a word-vector classifier; null on an encoder, which
    /// tokenizes with <see cref="TextEncoder.Tokenizer"/>.</summary>
    public TextVocabulary? Vocabulary { get; }

    /// <summary>The pretrained encoder of an <see cref="TextModelKind.Encoder"/> classifier (its weights fine-tuned in
    /// <see cref="TrainMode.FineTune"/>); null on word vectors. The classifier owns it.</summary>
    public TextEncoder? Encoder => (_network as EncoderNetwork)?.Encoder;

    /// <summary>Head mode of an encoder: the L2 penalties tried and the one chosen on validation data (null otherwise).</summary>
    public HeadFitRecord? HeadFit { get; private set; }

    /// <summary>The labels, in output order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The settings it was built and trained with.</summary>
    public TextClassifierOptions Options { get; }

    /// <summary>Embedding size (an encoder's: its pooled output's).</summary>
    public int EmbeddingDimension { get; }

    /// <summary>Where the embedding rows came from (set by training on word vectors).</summary>
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
        if (options.Model == TextModelKind.Encoder)
            throw new InvalidOptionException("Model", "an Encoder classifier trains on a TextEncoder: call Train with the encoder instead of word vectors");
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

    /// <summary>
    /// Trains a classifier on a pretrained transformer <paramref name="encoder"/> (<see cref="TextModelKind.Encoder"/>;
    /// <paramref name="options"/> default to <see cref="TextClassifierOptions.ForEncoder"/>): texts tokenized by its tokenizer, cut at
    /// <see cref="TextClassifierOptions.MaxLength"/> tokens, then dropout and a linear head on its pooled output.
    /// <see cref="TrainMode.Head"/> embeds the texts once with the frozen encoder and fits the head to convergence
    /// (L-BFGS logistic regression, L2 chosen on <paramref name="validation"/>; without it 1/N).
    /// <see cref="TrainMode.FineTune"/> trains encoder and head through the shared loop (AdamW, the encoder at
    /// <see cref="TextClassifierOptions.EncoderLearningRate"/>, warm-up and the schedule, the best validation epoch, checkpoints
    /// a killed run resumes from exactly). The classifier takes <paramref name="encoder"/> over: fine-tuning changes its
    /// weights, and disposing the classifier frees them (do not dispose or use the encoder afterwards).
    /// </summary>
    public static TextClassifier Train(TextEncoder encoder, TextDataset train, TextDataset? validation, TextClassifierOptions? options = null,
        TrainRunOptions? run = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        options ??= TextClassifierOptions.ForEncoder();
        TextNetwork network;
        try
        {
            if (options.Model != TextModelKind.Encoder)
                throw new InvalidOptionException("Model", $"Model is {options.Model}, but an encoder was given: use TextClassifierOptions.ForEncoder()");
            Validate(options);
            if (options.Mode == TrainMode.Auto) throw new InvalidOptionException("Mode", "an encoder classifier trains in Head or FineTune mode, not Auto");
            if (options.EncoderLearningRate <= 0) throw new InvalidOptionException("EncoderLearningRate", "learning rates must be positive");
            if (train.Examples.Count == 0) throw new TransferSharpException("the training data is empty");
            // The tokenizer cuts texts at the classifier's length (keeping [SEP] last, as the encoder was trained to see it).
            var tokenizer = encoder.Tokenizer;
            if (options.MaxLength < tokenizer.Settings.MaxLength)
                tokenizer = tokenizer.WithSettings(tokenizer.Settings with { MaxLength = options.MaxLength });
            var taken = new TextEncoder(encoder.Module, tokenizer, encoder.Name, encoder.Pooling, encoder.Normalize);
            network = TextNetwork.Create(taken, train.Labels.Count, options);
        }
        catch
        {
            encoder.Dispose(); // taken over, as on success
            throw;
        }
        var owned = ((EncoderNetwork)network).Encoder;
        var classifier = new TextClassifier(network, null, train.Labels, options, owned.Dimension);
        using var generator = new Generator(unchecked((ulong)options.Seed));
        try
        {
            network.ResetParameters(generator);
            run ??= new TrainRunOptions();
            if (options.Mode == TrainMode.Head) classifier.FitHead(train, validation, run, cancellation);
            else classifier.Fit(train, validation, null, run, cancellation);
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>Head mode of an encoder: the frozen encoder embeds every text once (eval, no gradients), and the head is
    /// the logistic regression vision's head mode fits (<see cref="LogisticHead"/>), written into the head's Linear.</summary>
    private void FitHead(TextDataset train, TextDataset? validation, TrainRunOptions run, CancellationToken cancellation)
    {
        var network = (EncoderNetwork)_network;
        foreach (var p in network.Encoder.Module.parameters()) p.requires_grad = false;
        var (texts, targets) = Labelled(train);
        var (validationTexts, validationTargets) = Labelled(validation);
        using var scope = NewDisposeScope();
        Tensor Embed(IReadOnlyList<string> x)
        {
            var rows = network.Encoder.Encode(x, Options.BatchSize, run.Progress, cancellation: cancellation);
            return torch.tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, EmbeddingDimension]);
        }
        var trainX = Embed(texts);
        Tensor? valX = validationTexts.Count > 0 ? Embed(validationTexts) : null;
        var (weight, bias) = network.Head;
        var state = LogisticHead.Fit(weight, bias, "head", trainX, torch.tensor(targets), valX, valX is null ? null : torch.tensor(validationTargets),
            Options.ToTrainOptions(), run.OnEpoch, run.Progress, cancellation, out var record);
        HeadFit = record;
        History = state.History;
        BestEpoch = state.BestEpoch;
        _network.eval();
    }

    /// <summary>The texts of <paramref name="data"/> whose label the classifier knows, and their label indices. Texts of a
    /// label the training data lacks cannot be scored by the loss; they would be misses in every epoch (or λ) alike, so
    /// leaving them out of validation changes no choice.</summary>
    private (IReadOnlyList<string> Texts, long[] Targets) Labelled(TextDataset? data)
    {
        var labelIndex = Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => (long)p.i, StringComparer.Ordinal);
        var known = (data?.Examples ?? []).Where(e => labelIndex.ContainsKey(e.Label)).ToArray();
        return (known.Select(e => e.Text).ToArray(), known.Select(e => labelIndex[e.Label]).ToArray());
    }

    /// <summary>The token ids of a text: word indices cut at <see cref="TextClassifierOptions.MaxLength"/>, or the
    /// encoder's WordPiece ids with [CLS] and [SEP] (its tokenizer cuts them at the same length).</summary>
    private int[] Tokens(string text) => Encoder is { } encoder ? encoder.Tokenizer.Encode(text).Ids : Vocabulary!.Encode(text, Options.MaxLength);

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
        var vocabulary = Vocabulary!;
        var embedding = _network.EmbeddingLayer!;
        int v = vocabulary.Count, dim = EmbeddingDimension;
        var rng = new Random(Options.Seed);
        double range = Options.RandomInitRange ?? (vectors is null ? 0.25 : Math.Sqrt(3) * ValueSpread(vectors));
        var weights = new float[v * dim];
        int pretrained = 0, lowercased = 0, subword = 0, random = 0;
        for (int i = 1; i < v; i++)
        {
            var span = weights.AsSpan(i * dim, dim);
            var word = vocabulary.Tokens[i];
            if (i >= 2 && vectors is not null && vectors.IndexOf(word) is >= 0 and var found) { vectors.CopyVector(found, span); pretrained++; continue; }
            if (i >= 2 && vectors is not null && vectors.IndexOf(word.ToLowerInvariant()) is >= 0 and var lower) { vectors.CopyVector(lower, span); lowercased++; continue; }
            if (i >= 2 && vectors?.Subwords is { } sub) { sub.GetWordVector(word, span); subword++; continue; }
            for (int j = 0; j < dim; j++) span[j] = (float)((rng.NextDouble() * 2 - 1) * range);
            if (i >= 2) random++;
        }
        using (no_grad())
        using (var source = torch.tensor(weights, [v, dim]))
            embedding.weight!.copy_(source);
        if (Options.FreezeEmbeddings) embedding.weight!.requires_grad = false;
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
            train.Examples.Count, validation?.Examples.Count ?? 0, Vocabulary?.Count ?? 0, string.Join(",", Labels), $"{vectors?.Count ?? 0}x{EmbeddingDimension}",
            Encoder is { } encoder ? $"{encoder.Name} {encoder.Tokenizer.VocabularySize} {encoder.Module.parameters().Sum(p => p.numel())}" : "");
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
            var (texts, targets) = owner.Labelled(train);
            var (validationTexts, validationTargets) = owner.Labelled(validation);
            (_texts, _targets) = (texts.Select(owner.Tokens).ToArray(), targets);
            (_validationTexts, _validationTargets) = (validationTexts.Select(owner.Tokens).ToArray(), validationTargets);
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
            if (_owner._network is EncoderNetwork)
            {
                // The pretrained encoder moves slowly (BERT's 2e-5–5e-5 scale); the new head learns at its own, larger rate.
                var all = _owner._network.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
                return
                [
                    new("head", all.Where(p => !p.name.StartsWith(EncoderNetwork.EncoderPrefix, StringComparison.Ordinal)).ToArray(), options.LearningRate),
                    new("encoder", all.Where(p => p.name.StartsWith(EncoderNetwork.EncoderPrefix, StringComparison.Ordinal)).ToArray(), _owner.Options.EncoderLearningRate),
                ];
            }
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
        if (Encoder is { } encoder) Array.Fill(ids, encoder.Tokenizer.PaddingId);
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
        var results = new IReadOnlyList<(string, float)>[texts.Count];
        _network.eval();
        using var _ = no_grad();
        // Longest first, so that texts of similar length share a batch and little is padding (a transformer's cost grows
        // with the padded length); the answers go back in input order.
        var tokens = texts.Select(Tokens).ToArray();
        var order = Enumerable.Range(0, tokens.Length).OrderByDescending(i => tokens[i].Length).ToArray();
        int batchSize = Encoder is null ? 256 : Options.BatchSize;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = order.Skip(start).Take(batchSize).ToArray();
            var batch = Batch(chunk.Select(i => tokens[i]).ToList());
            var probabilities = nn.functional.softmax(_network.call(batch.Ids, batch.Lengths), 1);
            var (values, indices) = probabilities.topk(k, 1);
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            for (int b = 0; b < chunk.Length; b++)
                results[chunk[b]] = Enumerable.Range(0, k).Select(j => (Labels[(int)ix[b * k + j]], v[b * k + j])).ToList();
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

    /// <summary>What rebuilds an encoder: its graph (<see cref="GraphJson"/>), tokenizer settings, pooling and name; the
    /// tokenizer's tokens are the file's vocabulary, the weights its <c>encoder.*</c> tensors.</summary>
    private sealed record SavedEncoder(string Name, TextPooling Pooling, bool Normalize, BertTokenizerSettings Tokenizer, string Graph);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Writes the weights and, in the safetensors metadata, the vocabulary, labels and settings (an encoder's graph,
    /// tokenizer and pooling too: the file alone rebuilds the classifier) — to a temporary file renamed into place when
    /// complete.</summary>
    public void Save(string path)
    {
        // Version 2 marks the encoder kind, which a build that reads only version 1 could not rebuild.
        var settings = new SavedSettings(Encoder is null ? 1 : 2, Options.Model, EmbeddingDimension, Options.MaxLength, Options.Lowercase, Options.CnnFilters,
            [.. Options.CnnKernelSizes], Options.LstmHidden, Options.Dropout, Options, Coverage);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["settings"] = JsonSerializer.Serialize(settings, Json),
            ["labels"] = JsonSerializer.Serialize(Labels, Json),
            ["vocabulary"] = JsonSerializer.Serialize(Vocabulary?.Tokens ?? Encoder!.Tokenizer.Tokens, Json),
        };
        if (Encoder is { } encoder)
            metadata["encoder"] = JsonSerializer.Serialize(new SavedEncoder(encoder.Name, encoder.Pooling, encoder.Normalize, encoder.Tokenizer.Settings,
                GraphJson.Serialize(encoder.Module.Graph)), Json);
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
        if (settings.Version is not (1 or 2)) throw new InvalidFileException(path, $"text classifier version {settings.Version} is not supported (this build reads 1 and 2)");
        if (settings.Model == TextModelKind.Encoder) return LoadEncoder(path, dict, settings, labels, tokens);
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

    /// <summary>An encoder classifier: the graph and tokenizer from the metadata, then every tensor exactly.</summary>
    private static TextClassifier LoadEncoder(string path, StateDict dict, SavedSettings settings, string[] labels, string[] tokens)
    {
        GraphModule module;
        BertTextTokenizer tokenizer;
        SavedEncoder saved;
        try
        {
            saved = JsonSerializer.Deserialize<SavedEncoder>(dict.Metadata["encoder"], Json) ?? throw new JsonException("null encoder");
            tokenizer = BertTextTokenizer.FromTokens(tokens, saved.Tokenizer, path);
            module = new GraphModule(GraphJson.Deserialize(saved.Graph));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or NotSupportedException or GraphException or ArgumentException)
        {
            throw new InvalidFileException(path, $"the classifier's encoder metadata is damaged: {e.Message}", e);
        }
        var options = settings.Training with { Model = settings.Model, MaxLength = settings.MaxLength, Dropout = settings.Dropout };
        TextClassifier? classifier = null;
        try
        {
            var encoder = new TextEncoder(module, tokenizer, saved.Name, saved.Pooling, saved.Normalize);
            TextEncoder.CheckVocabulary(module, tokenizer);
            classifier = new TextClassifier(TextNetwork.Create(encoder, labels.Length, options), null, labels, options, encoder.Dimension) { Coverage = settings.Coverage };
            StateLoader.Load(classifier._network, dict, LoadPolicy.Exact, path);
            classifier._network.eval();
            return classifier;
        }
        catch
        {
            if (classifier is null) module.Dispose();
            else classifier.Dispose();
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
