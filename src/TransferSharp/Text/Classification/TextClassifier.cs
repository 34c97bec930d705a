using System.Diagnostics;
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

    /// <summary>Per-epoch results of training.</summary>
    public IReadOnlyList<EpochResult> History { get; private set; } = [];

    /// <summary>Trainable parameters (the embedding counts when it is fine-tuned).</summary>
    public long TrainableParameters => _network.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>
    /// Builds the vocabulary from <paramref name="train"/>, initialises the embedding from <paramref name="vectors"/>
    /// (random without them), and trains. With <paramref name="validation"/>, the weights of the epoch with the best
    /// validation accuracy are kept. Cancellation stops between steps with <see cref="OperationCanceledException"/>.
    /// </summary>
    public static TextClassifier Train(TextDataset train, TextDataset? validation, WordVectors? vectors, TextClassifierOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new TextClassifierOptions();
        Validate(options);
        if (train.Examples.Count == 0) throw new TransferSharpException("the training data is empty");
        var labels = train.Labels;
        var vocabulary = TextVocabulary.Build(train.Examples.Select(e => e.Text), options.MinCount, options.MaxVocabulary, options.Lowercase);
        int dim = vectors?.Dimension ?? options.EmbeddingDimension;
        var network = TextNetwork.Create(options.Model, vocabulary.Count, dim, labels.Count, options);
        var classifier = new TextClassifier(network, vocabulary, labels, options, dim);
        // The run's own generator, seeded from the options, draws the initial weights and the dropout masks: the same seed
        // trains the same classifier in any process, whatever the host did with LibTorch's global generator.
        using var generator = new Generator(unchecked((ulong)options.Seed));
        try
        {
            network.ResetParameters(generator);
            classifier.Coverage = classifier.InitialiseEmbedding(vectors);
            network.Generator = generator;
            classifier.Fit(train, validation, progress, cancellation);
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
        finally
        {
            network.Generator = null;
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

    private void Fit(TextDataset train, TextDataset? validation, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        var labelIndex = Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
        var encoded = train.Examples.Select(e => Vocabulary.Encode(e.Text, Options.MaxLength)).ToArray();
        var targets = train.Examples.Select(e => labelIndex[e.Label]).ToArray();
        // The one optimizer of vision and text training (Training/Optimizers.cs), as Adam with coupled L2.
        var embedding = _network.EmbeddingLayer.weight!;
        var named = _network.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var groups = new List<ParamGroup> { new("body", named.Where(p => !ReferenceEquals(p.Item2, embedding)).ToArray(), Options.LearningRate) };
        if (!Options.FreezeEmbeddings)
            groups.Add(new ParamGroup("embedding", named.Where(p => ReferenceEquals(p.Item2, embedding)).ToArray(), Options.EmbeddingLearningRate ?? Options.LearningRate));
        using var optimizer = new Optimizer(OptimizerKind.Adam, groups, Options.WeightDecay, momentum: 0);
        var rng = new Random(Options.Seed);
        int steps = (encoded.Length + Options.BatchSize - 1) / Options.BatchSize;
        var history = new List<EpochResult>();
        Dictionary<string, Tensor>? best = null;
        double bestAccuracy = double.NegativeInfinity;
        try
        {
            for (int epoch = 1; epoch <= Options.Epochs; epoch++)
            {
                var clock = Stopwatch.StartNew();
                var order = Enumerable.Range(0, encoded.Length).ToArray();
                rng.Shuffle(order);
                _network.train();
                double lossSum = 0;
                int correct = 0, seen = 0;
                for (int s = 0; s < steps; s++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var batch = order.Skip(s * Options.BatchSize).Take(Options.BatchSize).ToArray();
                    using var scope = NewDisposeScope();
                    var (ids, lengths) = Batch(batch.Select(i => encoded[i]).ToList());
                    var y = torch.tensor(batch.Select(i => (long)targets[i]).ToArray());
                    var logits = _network.call(ids, lengths);
                    var loss = nn.functional.cross_entropy(logits, y);
                    optimizer.ZeroGrad();
                    loss.backward();
                    optimizer.Step();
                    lossSum += loss.item<float>() * batch.Length;
                    correct += (int)logits.argmax(1).eq(y).sum().item<long>();
                    seen += batch.Length;
                    progress?.Report(new TrainingProgress(epoch, Options.Epochs, s + 1, steps, lossSum / seen, null));
                }
                double? valAccuracy = validation is null ? null : Evaluate(validation).Accuracy;
                history.Add(new EpochResult(epoch, lossSum / seen, (double)correct / seen, valAccuracy, clock.Elapsed));
                progress?.Report(new TrainingProgress(epoch, Options.Epochs, steps, steps, lossSum / seen, valAccuracy));
                if (valAccuracy is { } acc && acc > bestAccuracy)
                {
                    bestAccuracy = acc;
                    DisposeAll(best);
                    best = _network.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());
                }
            }
            if (best is not null) StateLoader.Load(_network, best, LoadPolicy.Exact, "the best epoch's snapshot");
        }
        finally
        {
            DisposeAll(best);
            History = history;
        }
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }

    /// <summary>Token ids padded to the batch's longest text (and at least the network's minimum) and the lengths.</summary>
    private (Tensor Ids, Tensor Lengths) Batch(IReadOnlyList<int[]> texts)
    {
        int t = Math.Max(_network.MinimumLength, texts.Max(x => x.Length));
        var ids = new long[texts.Count * t];
        var lengths = new long[texts.Count];
        for (int b = 0; b < texts.Count; b++)
        {
            for (int j = 0; j < texts[b].Length; j++) ids[b * t + j] = texts[b][j];
            lengths[b] = texts[b].Length;
        }
        return (torch.tensor(ids, [texts.Count, t]), torch.tensor(lengths));
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
            var (ids, lengths) = Batch(chunk);
            var probabilities = nn.functional.softmax(_network.call(ids, lengths), 1);
            var (values, indices) = probabilities.topk(k, 1);
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            for (int b = 0; b < chunk.Count; b++)
                results.Add(Enumerable.Range(0, k).Select(j => (Labels[(int)ix[b * k + j]], v[b * k + j])).ToList());
        }
        return results;
    }

    /// <summary>Accuracy, macro F1 and per-label precision/recall/F1 on labelled data (labels the classifier does
    /// not know count as misses).</summary>
    public TextEvaluation Evaluate(TextDataset data)
    {
        var predicted = Predict(data.Examples.Select(e => e.Text).ToList(), 1).Select(p => p[0].Label).ToList();
        var gold = data.Examples.Select(e => e.Label).ToList();
        return Score(gold, predicted);
    }

    /// <summary>Accuracy and per-label scores of predictions against gold labels.</summary>
    public static TextEvaluation Score(IReadOnlyList<string> gold, IReadOnlyList<string> predicted)
    {
        int n = gold.Count, correct = 0;
        for (int i = 0; i < n; i++) if (gold[i] == predicted[i]) correct++;
        var perLabel = gold.Concat(predicted).Distinct().Order(StringComparer.Ordinal).Select(label =>
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < n; i++)
            {
                bool g = gold[i] == label, p = predicted[i] == label;
                if (g && p) tp++;
                else if (p) fp++;
                else if (g) fn++;
            }
            double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp), recall = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new LabelScore(label, precision, recall, f1, tp + fn);
        }).ToList();
        return new TextEvaluation(n, n == 0 ? 0 : (double)correct / n, perLabel.Count == 0 ? 0 : perLabel.Average(l => l.F1), perLabel);
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
