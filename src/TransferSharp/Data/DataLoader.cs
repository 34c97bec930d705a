using System.Collections.Concurrent;
using TorchSharp;
using TransferSharp.Vision.Preprocessing;
using static TorchSharp.torch;

namespace TransferSharp.Data;

/// <summary>What to do with an image that cannot be decoded.</summary>
public enum BadImagePolicy
{
    /// <summary>Leave it out, count it and list it at the end (the default).</summary>
    Skip,
    /// <summary>Stop with an error naming the file.</summary>
    Fail,
}

/// <summary>The images left out under <see cref="BadImagePolicy.Skip"/>, with the reason (thread-safe).</summary>
public sealed class BadImageLog
{
    private readonly ConcurrentDictionary<string, string> _entries = new(StringComparer.Ordinal);

    /// <summary>Records a bad file (once per path).</summary>
    public void Add(string path, string reason) => _entries.TryAdd(path, reason);

    /// <summary>Number of distinct bad files.</summary>
    public int Count => _entries.Count;

    /// <summary>The bad files and why, sorted by path.</summary>
    public IReadOnlyList<(string Path, string Reason)> Entries =>
        _entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Key, e.Value)).ToArray();
}

/// <summary>How batches are loaded.</summary>
public sealed record LoaderOptions
{
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Decoding threads per batch (0: one per core).</summary>
    public int Workers { get; init; }

    /// <summary>Batches decoded ahead of the consumer (the bound of the queue).</summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>Unreadable images: skip (default) or fail.</summary>
    public BadImagePolicy OnBadImage { get; init; } = BadImagePolicy.Skip;
}

/// <summary>One batch: inputs [N, C, H, W], labels [N] (int64), and which dataset samples they are.</summary>
public sealed class Batch(Tensor images, Tensor labels, int[] indices) : IDisposable
{
    /// <summary>Model inputs.</summary>
    public Tensor Images { get; } = images;

    /// <summary>Class indices.</summary>
    public Tensor Labels { get; } = labels;

    /// <summary>Dataset indices of the samples, in batch order (bad images left out).</summary>
    public int[] Indices { get; } = indices;

    /// <inheritdoc />
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Decodes and transforms samples on background threads while the caller computes: a bounded number of
/// batches (<see cref="LoaderOptions.Prefetch"/>) is prepared ahead, each decoded in parallel. Batches come
/// out in order and their content depends only on (seed, epoch, order), never on thread timing.
/// </summary>
public static class DataLoader
{
    /// <summary>The sample order of an epoch: a seeded permutation, or 0..N−1 when not shuffled.</summary>
    public static int[] Order(int count, bool shuffle, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffle) new Random(MixSeed(seed, epoch, -1)).Shuffle(order);
        return order;
    }

    /// <summary>A 32-bit seed from (run seed, epoch, sample): SplitMix64 of the three, so neighbouring seeds are unrelated.</summary>
    internal static int MixSeed(int seed, int epoch, int sample)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)epoch << 32 | (uint)sample);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7fffffff);
    }

    private sealed record RawBatch(float[] Values, long[] Labels, int[] Indices);

    /// <summary>
    /// Yields the batches of <paramref name="order"/> (dataset indices). Bad images are skipped into
    /// <paramref name="badImages"/> or thrown as <see cref="ImageDecodeException"/>, as the options say.
    /// Dispose each batch. Cancelling stops the decoding threads and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static IEnumerable<Batch> Batches(Dataset dataset, IReadOnlyList<int> order, SampleTransform transform, LoaderOptions options,
        int seed = 0, int epoch = 0, BadImageLog? badImages = null, CancellationToken cancellation = default)
    {
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), "batch size must be positive");
        int batches = (order.Count + options.BatchSize - 1) / options.BatchSize;
        int per = transform.SampleSize;
        int workers = options.Workers > 0 ? options.Workers : Environment.ProcessorCount;
        var log = badImages ?? new BadImageLog();
        var pending = new Queue<Task<RawBatch>>();
        int next = 0;

        RawBatch Produce(int b)
        {
            int start = b * options.BatchSize, n = Math.Min(options.BatchSize, order.Count - start);
            var values = new float[(long)n * per];
            var ok = new bool[n];
            ImageTransforms.ForEachImage(n, new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = cancellation }, i =>
            {
                int index = order[start + i];
                var random = new Random(MixSeed(seed, epoch, index));
                try
                {
                    dataset.Fill(index, transform, random, values.AsSpan(i * per, per));
                    ok[i] = true;
                }
                catch (ImageDecodeException e) when (options.OnBadImage == BadImagePolicy.Skip)
                {
                    log.Add(e.FilePath, e.Reason);
                }
            });
            int kept = ok.Count(k => k);
            if (kept == n)
                return new RawBatch(values, Enumerable.Range(0, n).Select(i => (long)dataset.LabelOf(order[start + i])).ToArray(),
                    Enumerable.Range(0, n).Select(i => order[start + i]).ToArray());
            var packed = new float[(long)kept * per];
            var labels = new long[kept];
            var indices = new int[kept];
            for (int i = 0, k = 0; i < n; i++)
            {
                if (!ok[i]) continue;
                values.AsSpan(i * per, per).CopyTo(packed.AsSpan(k * per, per));
                labels[k] = dataset.LabelOf(order[start + i]);
                indices[k++] = order[start + i];
            }
            return new RawBatch(packed, labels, indices);
        }

        void Schedule()
        {
            while (pending.Count < Math.Max(1, options.Prefetch) && next < batches)
            {
                int b = next++;
                pending.Enqueue(Task.Run(() => Produce(b), cancellation));
            }
        }

        try
        {
            Schedule();
            while (pending.Count > 0)
            {
                RawBatch raw;
                try
                {
                    raw = pending.Dequeue().GetAwaiter().GetResult();
                }
                catch (AggregateException e)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
                    throw;
                }
                Schedule();
                cancellation.ThrowIfCancellationRequested();
                if (raw.Labels.Length == 0) continue;
                var shape = new long[] { raw.Labels.Length }.Concat(transform.SampleShape).ToArray();
                yield return new Batch(torch.tensor(raw.Values, shape), torch.tensor(raw.Labels), raw.Indices);
            }
        }
        finally
        {
            // Let decoders still running finish before the caller moves on (they only touch their own arrays).
            foreach (var t in pending) { try { t.Wait(); } catch (Exception) { } }
        }
    }
}
