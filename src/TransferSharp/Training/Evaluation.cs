using System.Diagnostics;
using System.Text;
using TorchSharp;
using TransferSharp.Vision;
using TransferSharp.Data;
using TransferSharp.Vision.Inference;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>Precision, recall and F1 of one class (support: its true samples).</summary>
public sealed record ClassMetrics(string Name, int Support, double Precision, double Recall, double F1);

/// <summary>One evaluated sample: where it is, its true and predicted class, the predicted class's probability and the
/// sample's cross-entropy.</summary>
/// <param name="Index">Index in the evaluated data set (after aligning its classes to the model's).</param>
/// <param name="Source">The file (or "#N"), as the data set names it.</param>
/// <param name="Truth">True class index.</param>
/// <param name="Predicted">Predicted class index.</param>
/// <param name="Probability">Softmax probability of the predicted class.</param>
/// <param name="Loss">Cross-entropy of the sample (−log of the true class's probability).</param>
public sealed record SamplePrediction(int Index, string Source, int Truth, int Predicted, double Probability, double Loss);

/// <summary>
/// Classification metrics of images and texts alike: accuracy, top-k accuracy, per-class precision/recall/F1 (0 where
/// undefined, as scikit-learn's zero_division=0), macro averages, and the confusion matrix (rows: true class, columns:
/// predicted).
/// </summary>
public sealed class EvaluationReport
{
    /// <summary>Computes the metrics from true and predicted labels; <paramref name="topKHits"/> counts samples whose
    /// true class is among the top <paramref name="topK"/> scores (null: not measured).</summary>
    public EvaluationReport(IReadOnlyList<string> classNames, IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int topK = 1, long? topKHits = null, double? loss = null,
        IReadOnlyList<SamplePrediction>? samples = null)
    {
        Samples = samples ?? [];
        if (truth.Count != predicted.Count) throw new ArgumentException($"{truth.Count} true labels but {predicted.Count} predictions");
        int k = classNames.Count;
        ClassNames = classNames;
        Count = truth.Count;
        var matrix = new int[k][];
        for (int i = 0; i < k; i++) matrix[i] = new int[k];
        for (int i = 0; i < truth.Count; i++) matrix[truth[i]][predicted[i]]++;
        ConfusionMatrix = matrix;
        long correct = Enumerable.Range(0, k).Sum(i => (long)matrix[i][i]);
        Accuracy = Count == 0 ? double.NaN : correct / (double)Count;
        TopK = topK;
        TopKAccuracy = Count == 0 ? double.NaN : (topKHits ?? correct) / (double)Count;
        Loss = loss;
        PerClass = Enumerable.Range(0, k).Select(c =>
        {
            int tp = matrix[c][c];
            int support = matrix[c].Sum();
            int predictedAs = Enumerable.Range(0, k).Sum(r => matrix[r][c]);
            double precision = predictedAs == 0 ? 0 : tp / (double)predictedAs;
            double recall = support == 0 ? 0 : tp / (double)support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new ClassMetrics(classNames[c], support, precision, recall, f1);
        }).ToArray();
        // scikit-learn's macro average (labels=None): over the classes that occur in the truth or the predictions, so a
        // class predicted but never true counts with F1 0; classes neither true nor predicted are left out.
        var present = PerClass.Where((c, i) => c.Support > 0 || Enumerable.Range(0, k).Any(r => matrix[r][i] > 0)).ToArray();
        MacroPrecision = present.Length == 0 ? 0 : present.Average(c => c.Precision);
        MacroRecall = present.Length == 0 ? 0 : present.Average(c => c.Recall);
        MacroF1 = present.Length == 0 ? 0 : present.Average(c => c.F1);
    }

    /// <summary>Class names (matrix order).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Samples evaluated.</summary>
    public int Count { get; }

    /// <summary>Top-1 accuracy.</summary>
    public double Accuracy { get; }

    /// <summary>The k of <see cref="TopKAccuracy"/>.</summary>
    public int TopK { get; }

    /// <summary>Fraction of samples whose true class is among the top k scores.</summary>
    public double TopKAccuracy { get; }

    /// <summary>Mean cross-entropy, when measured.</summary>
    public double? Loss { get; }

    /// <summary>Per-class metrics, in class order.</summary>
    public IReadOnlyList<ClassMetrics> PerClass { get; }

    /// <summary>Mean precision over the classes that are true or predicted at least once (scikit-learn's macro average).</summary>
    public double MacroPrecision { get; }

    /// <summary>Mean recall over the classes that are true or predicted at least once.</summary>
    public double MacroRecall { get; }

    /// <summary>Mean F1 over the classes that are true or predicted at least once: scikit-learn's
    /// <c>f1_score(average="macro", zero_division=0)</c>.</summary>
    public double MacroF1 { get; }

    /// <summary>The report of predicted against true labels given by name (texts, or any classifier's output): its classes
    /// are every label that occurs in either, in ordinal order, so a true label the classifier does not know counts as a miss.</summary>
    public static EvaluationReport FromLabels(IReadOnlyList<string> truth, IReadOnlyList<string> predicted)
    {
        if (truth.Count != predicted.Count) throw new ArgumentException($"{truth.Count} true labels but {predicted.Count} predictions");
        var names = truth.Concat(predicted).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);
        return new EvaluationReport(names, truth.Select(t => index[t]).ToArray(), predicted.Select(p => index[p]).ToArray());
    }

    /// <summary>Every sample's prediction, in data-set order (empty when the report was built from labels only).</summary>
    public IReadOnlyList<SamplePrediction> Samples { get; }

    /// <summary>The <paramref name="count"/> samples of highest loss, highest first (fastai's <c>top_losses</c>).</summary>
    public IReadOnlyList<SamplePrediction> TopLosses(int count = 9) =>
        Samples.OrderByDescending(s => s.Loss).ThenBy(s => s.Index).Take(count).ToArray();

    /// <summary>[true class][predicted class] counts.</summary>
    public IReadOnlyList<int[]> ConfusionMatrix { get; }

    /// <summary>The confusion matrix as an aligned text table (rows: true, columns: predicted).</summary>
    public string ConfusionMatrixText()
    {
        int k = ClassNames.Count;
        int nameWidth = Math.Max(10, ClassNames.Max(n => n.Length));
        int cell = Math.Max(5, ConfusionMatrix.SelectMany(r => r).DefaultIfEmpty(0).Max().ToString().Length + 1);
        var sb = new StringBuilder();
        sb.Append("true \\ predicted".PadRight(nameWidth + 1));
        for (int c = 0; c < k; c++) sb.Append(Abbreviate(ClassNames[c], cell - 1).PadLeft(cell));
        sb.Append('\n');
        for (int r = 0; r < k; r++)
        {
            sb.Append(ClassNames[r].PadRight(nameWidth + 1));
            for (int c = 0; c < k; c++) sb.Append(ConfusionMatrix[r][c].ToString().PadLeft(cell));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static string Abbreviate(string s, int width) => s.Length <= width ? s : s[..width];

    /// <summary>Writes the confusion matrix as a PNG (row-normalised colours, counts in the cells).</summary>
    public void SaveConfusionMatrixPng(string path, string? title = null) => Plots.SaveConfusionMatrix(this, path, title);

    /// <summary>Writes a grid of the <paramref name="count"/> samples of highest loss as a PNG: each the model's input
    /// image (as the eval transform crops it) under "predicted / true / loss / probability". Decodes those samples of
    /// <paramref name="data"/> again (the data set this report was computed on).</summary>
    public void SaveTopLossesPng(VisionModel model, Dataset data, string path, int count = 9, string? title = null) =>
        Plots.SaveTopLosses(this, model, data, path, count, title);
}

/// <summary>How a model is evaluated.</summary>
public sealed record EvaluateOptions
{
    /// <summary>k of the top-k accuracy.</summary>
    public int TopK { get; init; } = 5;

    /// <summary>Batch size, decoding threads, bad-image policy.</summary>
    public LoaderOptions Loader { get; init; } = new();

    /// <summary>Device.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Test-time augmentation: each image is scored as the mean of the softmax probabilities of the image and its
    /// horizontal mirror (the augmentation training applies by default), at twice the inference cost. The loss and the
    /// top-losses then use the averaged probabilities. Refused (<see cref="InvalidOptionException"/>) for a model whose
    /// training switched mirror images off (<see cref="Augmentation.HorizontalFlip"/> false).</summary>
    public bool Tta { get; init; }
}

/// <summary>Evaluates a trained model on a labelled data set (its classes are matched to the model's by name).</summary>
public static class Evaluator
{
    /// <summary>Runs the model over the data (eval transform, fast inference path) and computes the metrics.</summary>
    public static EvaluationReport Evaluate(VisionModel model, Dataset data, EvaluateOptions? options = null, BadImageLog? badImages = null,
        IProgress<ProgressInfo>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new EvaluateOptions();
        if (options.Tta && model.Training?.Options.Augmentation is { HorizontalFlip: false })
            throw new InvalidOptionException(nameof(EvaluateOptions.Tta),
                $"{model.Description} was trained without mirror images (its augmentation's HorizontalFlip is off: a mirrored image of its data is not the same class), so test-time augmentation, which averages each image with its mirror image, does not apply to it; evaluate without it");
        data = data.AlignTo(model.Labels);
        using var predictor = model.CreatePredictor(new PredictorOptions { Device = options.Device, BatchSize = options.Loader.BatchSize });
        var samples = new List<SamplePrediction>(data.Count);
        var truth = new List<int>(data.Count);
        var predicted = new List<int>(data.Count);
        long topHits = 0;
        double loss = 0;
        int k = Math.Clamp(options.TopK, 1, model.Labels.Count);
        var clock = Stopwatch.StartNew();
        foreach (var batch in DataLoader.Batches(data, Enumerable.Range(0, data.Count).ToArray(), new SampleTransform(model.Preprocessing), options.Loader,
            badImages: badImages, cancellation: cancellation))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var logits = options.Tta ? MirrorAveraged(predictor, batch.Images) : predictor.Logits(batch.Images);
                loss += nn.functional.cross_entropy(logits, batch.Labels, reduction: nn.Reduction.Sum).item<float>();
                var top = logits.topk(k, 1).indexes;
                var hits = top.eq(batch.Labels.unsqueeze(1)).any(1).sum().item<long>();
                topHits += hits;
                var best = top.select(1, 0).data<long>().ToArray();
                var labels = batch.Labels.data<long>().ToArray();
                var logp = nn.functional.log_softmax(logits, 1);
                var bestLogp = logp.gather(1, top.narrow(1, 0, 1)).squeeze(1).data<float>().ToArray();
                var trueLogp = logp.gather(1, batch.Labels.unsqueeze(1)).squeeze(1).data<float>().ToArray();
                for (int i = 0; i < labels.Length; i++)
                    samples.Add(new SamplePrediction(batch.Indices[i], data.SourceOf(batch.Indices[i]), (int)labels[i], (int)best[i], Math.Exp(bestLogp[i]), -trueLogp[i]));
                predicted.AddRange(best.Select(v => (int)v));
                truth.AddRange(labels.Select(v => (int)v));
            }
            progress?.Report(new ProgressInfo("evaluate", truth.Count, data.Count, truth.Count / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }
        return new EvaluationReport(model.Labels, truth, predicted, k, topHits, truth.Count == 0 ? null : loss / truth.Count, samples);
    }

    /// <summary>Log of the mean of the softmax probabilities of a batch and its mirror: log-probabilities, so that
    /// cross-entropy, top-k and log-softmax treat them as they treat logits.</summary>
    private static Tensor MirrorAveraged(Predictor predictor, Tensor images)
    {
        using var mirrored = images.flip(3);
        using var a = predictor.Logits(images);
        using var b = predictor.Logits(mirrored);
        return (a.softmax(1) + b.softmax(1)).mul_(0.5).log_();
    }
}
