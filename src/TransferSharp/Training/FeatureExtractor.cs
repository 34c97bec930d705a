using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using TransferSharp.Data;
using TransferSharp.Vision;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Inference;
using static TorchSharp.torch;
using TransferSharp.IO;

namespace TransferSharp.Training;

/// <summary>Pooled features of a data set: one row of <see cref="Dimension"/> floats per kept sample.</summary>
public sealed class FeatureSet
{
    /// <summary>Wraps extracted features.</summary>
    public FeatureSet(float[] values, int dimension, int[] labels, string[] sources, IReadOnlyList<string> classNames)
    {
        if (dimension <= 0 || values.Length != (long)labels.Length * dimension || sources.Length != labels.Length)
            throw new ArgumentException($"{values.Length} values, {labels.Length} labels and {sources.Length} sources do not make rows of {dimension}");
        Values = values;
        Dimension = dimension;
        Labels = labels;
        Sources = sources;
        ClassNames = classNames;
    }

    /// <summary>Row-major features [Count × Dimension].</summary>
    public float[] Values { get; }

    /// <summary>Features per sample.</summary>
    public int Dimension { get; }

    /// <summary>Class index per sample.</summary>
    public int[] Labels { get; }

    /// <summary>Source (file path) per sample.</summary>
    public string[] Sources { get; }

    /// <summary>Class names.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Samples.</summary>
    public int Count => Labels.Length;

    /// <summary>The features as a tensor [Count, Dimension] (a copy).</summary>
    public Tensor ToTensor() => torch.tensor(Values, [Count, Dimension]);

    /// <summary>The labels as an int64 tensor [Count].</summary>
    public Tensor LabelTensor() => torch.tensor(Labels.Select(l => (long)l).ToArray());
}

/// <summary>How features are extracted.</summary>
public sealed record ExtractOptions
{
    /// <summary>Images per forward pass, decoding threads, prefetch, bad-image policy.</summary>
    public LoaderOptions Loader { get; init; } = new() { BatchSize = 32 };

    /// <summary>Global pooling of the feature map.</summary>
    public PoolKind Pool { get; init; } = PoolKind.Avg;

    /// <summary>Extract the pre-logits instead (the classifier's input, timm's <c>pre_logits</c>: the same as the pooled
    /// features for most families; VGG's 4096 fc7 activations): what <see cref="Trainer.TrainHead"/> trains on.</summary>
    public bool PreLogits { get; init; }

    /// <summary>Device ("cpu", "cuda", …).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Samples per resumable chunk when writing a file.</summary>
    public int ChunkSize { get; init; } = 512;
}

/// <summary>
/// Runs a model's body over a data set and collects pooled features: batched, decoding overlapped with the
/// forward pass, BatchNorm folded and channels-last (the <see cref="Predictor"/>'s fast path). Writing to a
/// file is resumable: finished chunks are kept beside the output (<c>OUT.partial/</c>) and a rerun continues
/// after them; the output appears only when complete (temporary name, then rename).
/// </summary>
public static class FeatureExtractor
{
    /// <summary>Extracts features into memory.</summary>
    public static FeatureSet Extract(VisionModel model, Dataset data, ExtractOptions? options = null, BadImageLog? badImages = null,
        IProgress<ProgressInfo>? progress = null, CancellationToken cancellation = default)
    {
        return ExtractEach(model, [data], options, badImages, progress, cancellation)[0];
    }

    /// <summary>Extracts features of several data sets (training and validation) with one optimised copy of the model.</summary>
    internal static FeatureSet[] ExtractEach(VisionModel model, IReadOnlyList<Dataset> sets, ExtractOptions? options = null, BadImageLog? badImages = null,
        IProgress<ProgressInfo>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new ExtractOptions();
        using var predictor = CreatePredictor(model, options);
        return sets.Select(data =>
        {
            var rows = new List<(int Index, float[] Features)>(data.Count);
            Run(predictor, model, data, Enumerable.Range(0, data.Count).ToArray(), options, badImages, progress, 0, data.Count, cancellation, (i, f) => rows.Add((i, f)));
            return Assemble(data, rows, Dimension(model, options));
        }).ToArray();
    }

    /// <summary>
    /// Extracts features into a file: <c>.parquet</c> (columns path, label, label_index, f0…), <c>.npy</c>
    /// (float32 [N, F], with <c>NAME.index.csv</c> beside it giving path and label per row) or <c>.csv</c>
    /// (path, label, label_index, f0…). Interrupted runs resume from the last finished chunk.
    /// </summary>
    public static FeatureSet ExtractToFile(VisionModel model, Dataset data, string outputPath, ExtractOptions? options = null, BadImageLog? badImages = null,
        IProgress<ProgressInfo>? progress = null, CancellationToken cancellation = default)
    {
        options ??= new ExtractOptions();
        var format = FeatureFiles.FormatOf(outputPath);
        var partial = Path.GetFullPath(outputPath) + ".partial";
        var fingerprint = Fingerprint(model, data, options);
        var jobFile = Path.Combine(partial, "job.txt");
        if (Directory.Exists(partial) && (!File.Exists(jobFile) || File.ReadAllText(jobFile) != fingerprint)) Directory.Delete(partial, true);
        // Created with its job file in one step, so a kill never leaves an empty OUT.partial/ behind.
        if (!Directory.Exists(partial)) AtomicFile.CreateDirectory(partial, dir => File.WriteAllText(Path.Combine(dir, "job.txt"), fingerprint));
        badImages ??= new BadImageLog();
        int chunks = (data.Count + options.ChunkSize - 1) / options.ChunkSize;
        var order = Enumerable.Range(0, data.Count).ToArray();
        Predictor? predictor = null;
        try
        {
            for (int c = 0; c < chunks; c++)
            {
                var chunkFile = Path.Combine(partial, $"chunk-{c:D6}.bin");
                if (File.Exists(chunkFile)) continue;
                predictor ??= CreatePredictor(model, options);
                int start = c * options.ChunkSize, count = Math.Min(options.ChunkSize, data.Count - start);
                var rows = new List<(int, float[])>();
                var chunkBad = new BadImageLog();
                Run(predictor, model, data, order, options, chunkBad, progress, start, count, cancellation, (i, f) => rows.Add((i, f)), data.Count);
                WriteChunk(chunkFile, rows, chunkBad, model.Module.NumFeatures);
            }
        }
        catch (OperationCanceledException) when (!Directory.EnumerateFiles(partial, "chunk-*").Any())
        {
            // Nothing to resume from: leave no folder behind.
            Directory.Delete(partial, true);
            throw;
        }
        finally
        {
            predictor?.Dispose();
        }
        var all = new List<(int, float[])>(data.Count);
        for (int c = 0; c < chunks; c++) ReadChunk(Path.Combine(partial, $"chunk-{c:D6}.bin"), all, badImages);
        var set = Assemble(data, all, model.Module.NumFeatures);
        FeatureFiles.Write(set, outputPath, format);
        Directory.Delete(partial, true);
        return set;
    }

    private static int Dimension(VisionModel model, ExtractOptions options) =>
        options.PreLogits ? model.Module.Graph.PreLogitsSize : model.Module.NumFeatures;

    /// <summary>Seconds per image of extracting <paramref name="data"/>'s features, timed on up to <paramref name="images"/>
    /// images spread over the set, after one untimed batch (the first pays for allocations and kernel choice). Bad images
    /// are skipped and not recorded: the run that extracts the set records them.</summary>
    internal static double SecondsPerImage(VisionModel model, Dataset data, ExtractOptions options, int images, CancellationToken cancellation)
    {
        using var predictor = CreatePredictor(model, options);
        int warm = Math.Min(options.Loader.BatchSize, Math.Max(1, data.Count / 2));
        int timed = Math.Max(1, Math.Min(images, data.Count - warm));
        int total = warm + timed;
        var order = Enumerable.Range(0, total).Select(i => (int)((long)i * data.Count / total)).ToArray();
        Run(predictor, model, data, order, options, new BadImageLog(), null, 0, warm, cancellation, (_, _) => { });
        var clock = Stopwatch.StartNew();
        Run(predictor, model, data, order, options, new BadImageLog(), null, warm, timed, cancellation, (_, _) => { });
        return clock.Elapsed.TotalSeconds / timed;
    }

    private static Predictor CreatePredictor(VisionModel model, ExtractOptions options) =>
        new(model.Module, model.Preprocessing, null, new PredictorOptions { Device = options.Device, BatchSize = options.Loader.BatchSize });

    private static void Run(Predictor predictor, VisionModel model, Dataset data, int[] order, ExtractOptions options, BadImageLog? badImages,
        IProgress<ProgressInfo>? progress, int start, int count, CancellationToken cancellation, Action<int, float[]> sink, int? reportTotal = null)
    {
        var transform = new SampleTransform(model.Preprocessing);
        int dim = Dimension(model, options);
        var clock = Stopwatch.StartNew();
        long done = 0;
        foreach (var batch in DataLoader.Batches(data, new ArraySegment<int>(order, start, count), transform, options.Loader, 0, 0, badImages, cancellation))
        {
            using (batch)
            {
                using var features = options.PreLogits ? predictor.PreLogits(batch.Images) : predictor.Features(batch.Images, options.Pool);
                using var f32 = features.to(ScalarType.Float32).contiguous();
                var values = f32.data<float>().ToArray();
                for (int i = 0; i < batch.Indices.Length; i++) sink(batch.Indices[i], values.AsSpan(i * dim, dim).ToArray());
                done += batch.Indices.Length;
            }
            progress?.Report(new ProgressInfo("extract", start + done, reportTotal ?? count, done / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }
    }

    private static FeatureSet Assemble(Dataset data, List<(int Index, float[] Features)> rows, int dim)
    {
        rows.Sort((a, b) => a.Index.CompareTo(b.Index));
        var values = new float[(long)rows.Count * dim];
        for (int r = 0; r < rows.Count; r++) rows[r].Features.CopyTo(values, (long)r * dim);
        return new FeatureSet(values, dim, rows.Select(r => data.LabelOf(r.Index)).ToArray(), rows.Select(r => data.SourceOf(r.Index)).ToArray(), data.ClassNames);
    }

    private static string Fingerprint(VisionModel model, Dataset data, ExtractOptions options)
    {
        var sb = new StringBuilder();
        sb.AppendLine(model.Description).AppendLine(model.Preprocessing.ToString()).AppendLine(options.Pool.ToString()).AppendLine(options.ChunkSize.ToString());
        // A cheap digest of the weights, so a different checkpoint of the same architecture does not reuse chunks.
        using (var scope = NewDisposeScope())
            foreach (var p in model.Module.parameters()) sb.Append(p.sum().item<float>().ToString("R")).Append(',');
        sb.AppendLine();
        for (int i = 0; i < data.Count; i++) sb.Append(data.SourceOf(i)).Append('\t').Append(data.LabelOf(i)).Append('\n');
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private static void WriteChunk(string path, List<(int Index, float[] Features)> rows, BadImageLog bad, int dim) => AtomicFile.Write(path, fs =>
    {
        using var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true);
        w.Write(rows.Count);
        w.Write(dim);
        foreach (var (index, f) in rows)
        {
            w.Write(index);
            foreach (var v in f) w.Write(v);
        }
        var entries = bad.Entries;
        w.Write(entries.Count);
        foreach (var (p, reason) in entries) { w.Write(p); w.Write(reason); }
    });

    private static void ReadChunk(string path, List<(int, float[])> rows, BadImageLog bad)
    {
        using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        int n = r.ReadInt32(), dim = r.ReadInt32();
        for (int i = 0; i < n; i++)
        {
            int index = r.ReadInt32();
            var f = new float[dim];
            for (int j = 0; j < dim; j++) f[j] = r.ReadSingle();
            rows.Add((index, f));
        }
        int b = r.ReadInt32();
        for (int i = 0; i < b; i++) bad.Add(r.ReadString(), r.ReadString());
    }
}
