using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using TransferSharp.Vision.Inference;
using static TorchSharp.torch;

namespace TransferSharp.Serving;

/// <summary>What an image asks of the model.</summary>
internal enum ImageTask { Classify, Features }

/// <summary>The answer for one image: its top classes, or its pooled feature vector.</summary>
internal sealed record ImageResult(Prediction? Prediction, float[]? Features);

/// <summary>The queue is full: the request should be retried later (HTTP 429).</summary>
internal sealed class QueueFullException(int queued, int capacity)
    : Exception($"the queue holds {queued} of {capacity} images; retry shortly");

/// <summary>
/// Dynamic batching: requests put preprocessed images into one queue; a worker takes the first waiting image, waits up
/// to <see cref="ServingOptions.MaxDelay"/> for more (at most <see cref="ServingOptions.MaxBatch"/>), and runs them in
/// one forward pass. With several workers (<see cref="ServingOptions.Workers"/>) one gathers while another computes, and
/// the intra-op threads are shared out: a batch that starts alone with nothing else in flight uses all of them, otherwise
/// each pass uses its worker's share — on 2 cores two one-thread passes get more done than one two-thread pass (the
/// convolutions scale poorly across two threads at these sizes; docs/benchmarks.md, "Serving"). The queue is bounded by
/// <see cref="ServingOptions.MaxQueue"/> images: a request that would overflow it is refused whole, before anything of
/// it is queued. An image whose request gave up (timeout, client gone) is skipped. Disposing lets the workers finish
/// what is queued, then stops them.
/// </summary>
internal sealed class DynamicBatcher : IDisposable
{
    private sealed class Item(float[] pixels, ImageTask task, string source, int top)
    {
        public float[] Pixels { get; } = pixels;
        public ImageTask Task { get; } = task;
        public string Source { get; } = source;
        public int Top { get; } = top;
        public TaskCompletionSource<ImageResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Abandoned;
    }

    private readonly ServedModel _model;
    private readonly ServingOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = false });
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim _gathering = new(1, 1);
    private readonly int _threads;
    private readonly bool _shareThreads;
    private readonly TaskCompletionSource _warm = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _queued, _warming, _running, _requests, _arriving;
    private long _batchTicks; // a moving average of the forward passes' times (Stopwatch ticks)

    public DynamicBatcher(ServedModel model, ServingOptions options, ServingMetrics metrics)
    {
        options.Validate();
        _model = model;
        _options = options;
        _metrics = metrics;
        _threads = Math.Max(1, TorchSharp.torch.get_num_threads());
        int workers = options.WorkersFor(model);
        _shareThreads = workers > 1 && model.Engine == "torchsharp";
        _warming = workers;
        // Dedicated threads run the forward passes. LibTorch keeps an intra-op thread team per calling thread: forward
        // passes hopping over thread-pool threads (as an async loop's continuations do) multiply the teams, whose idle
        // threads spin and starve the one working (mobilenet_v2 ran 2× slower per image batched than alone).
        _workers = Enumerable.Range(0, workers).Select(i => new Thread(Work) { IsBackground = true, Name = $"TransferSharp batcher {i + 1}" }).ToArray();
        foreach (var w in _workers) w.Start();
    }

    /// <summary>Forward passes that may run at once.</summary>
    public int Workers => _workers.Length;

    /// <summary>True once every worker has run its warm-up batch.</summary>
    public bool IsReady => _warm.Task.IsCompletedSuccessfully;

    /// <summary>Completes when the warm-up batches have run (faults when one failed).</summary>
    public Task Ready => _warm.Task;

    /// <summary>Images waiting.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Counts a request as in flight (from its arrival, while its images are decoded, until it is answered) until
    /// the returned object is disposed: with several workers a batch takes at most its worker's share of the requests in
    /// flight, so that concurrent clients split evenly over the workers instead of one full batch beside an idle worker.
    /// Until its images are queued (<see cref="RunAsync"/> with this scope) the request counts as arriving: a batch that
    /// has room waits a little past <see cref="ServingOptions.MaxDelay"/> for it (see <see cref="Gather"/>).</summary>
    public RequestScope TrackRequest()
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _arriving);
        return new RequestScope(this);
    }

    /// <summary>A request in flight; see <see cref="TrackRequest"/>.</summary>
    public sealed class RequestScope : IDisposable
    {
        private readonly DynamicBatcher _batcher;
        private int _arrived, _done;

        internal RequestScope(DynamicBatcher batcher) => _batcher = batcher;

        /// <summary>Its images are queued (or it will queue none): it no longer counts as arriving.</summary>
        internal void Arrived()
        {
            if (Interlocked.Exchange(ref _arrived, 1) == 0) Interlocked.Decrement(ref _batcher._arriving);
        }

        public void Dispose()
        {
            Arrived();
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref _batcher._requests);
        }
    }

    /// <summary>Requests received whose images are not queued yet (their bodies are read or decoded).</summary>
    internal int Arriving => Volatile.Read(ref _arriving);

    /// <summary>The most images the next batch takes: <see cref="ServingOptions.MaxBatch"/>, and with several workers and
    /// at least two images' work in flight for each (requests arriving or waiting, or images queued, whichever is more) no
    /// more than an even share of it. A lone request still waits <see cref="ServingOptions.MaxDelay"/> for company.</summary>
    private int BatchLimit()
    {
        int workers = _workers.Length;
        int work = Math.Max(Volatile.Read(ref _requests), Queued);
        return workers == 1 || work < 2 * workers ? _options.MaxBatch : Math.Min((work + workers - 1) / workers, _options.MaxBatch);
    }

    /// <summary>Queues the images of one request (all or none) and returns their results in order; <paramref name="request"/>
    /// (its <see cref="TrackRequest"/> scope) stops counting as arriving once they are queued (or when it is disposed).</summary>
    /// <exception cref="QueueFullException">The queue cannot take them all.</exception>
    public async Task<ImageResult[]> RunAsync(IReadOnlyList<(string Source, float[] Pixels)> images, ImageTask task, int top,
        TimeSpan timeout, CancellationToken cancellation, RequestScope? request = null)
    {
        int after = Interlocked.Add(ref _queued, images.Count);
        if (after > _options.MaxQueue)
        {
            Interlocked.Add(ref _queued, -images.Count);
            throw new QueueFullException(after - images.Count, _options.MaxQueue);
        }
        _metrics.QueueLength(after);
        var items = images.Select(i => new Item(i.Pixels, task, i.Source, top)).ToArray();
        foreach (var item in items)
        {
            if (!_queue.Writer.TryWrite(item))
            {
                // Only after Dispose: the server is stopping.
                foreach (var i in items) i.Abandoned = true;
                throw new ObjectDisposedException(nameof(DynamicBatcher), "the server is shutting down");
            }
        }
        request?.Arrived();
        try
        {
            return await Task.WhenAll(items.Select(i => i.Done.Task)).WaitAsync(timeout, cancellation);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            foreach (var i in items) i.Abandoned = true;
            throw;
        }
    }

    private void Work()
    {
        try
        {
            RunWarmUp();
            if (Interlocked.Decrement(ref _warming) == 0) _warm.TrySetResult();
        }
        catch (Exception e)
        {
            _warm.TrySetException(e);
        }
        var batch = new List<Item>(_options.MaxBatch);
        bool open = true;
        while (open)
        {
            batch.Clear();
            // One worker gathers at a time, so that concurrent gathering does not split what arrives into small batches.
            _gathering.Wait();
            try
            {
                open = Gather(_queue.Reader, batch);
            }
            finally
            {
                _gathering.Release();
            }
            if (batch.Count > 0) Run(batch);
        }
    }

    /// <summary>Waits for a first image, then for more until the batch is full (<see cref="BatchLimit"/>) or <see cref="ServingOptions.MaxDelay"/>
    /// has passed; false once the queue is completed and empty. Past the delay a batch with room still waits for requests
    /// that have arrived and are being decoded (<see cref="Arriving"/>), by default for at most half a forward pass's recent
    /// time (<see cref="ServingOptions.MaxArrivalWait"/>): a request left out waits for the next free worker and then its
    /// own pass — up to two passes — while waiting for it costs the batch a decode. Under concurrent clients this keeps each worker's batches whole (closed-loop clients answered
    /// together come back together, a few milliseconds apart as their images decode), instead of closing on the first few
    /// and leaving the rest a pass behind.</summary>
    private bool Gather(ChannelReader<Item> reader, List<Item> batch)
    {
        if (!WaitToRead(reader, Timeout.InfiniteTimeSpan)) return false;
        long deadline = Stopwatch.GetTimestamp() + (long)(_options.MaxDelay.TotalSeconds * Stopwatch.Frequency);
        long arrivalDeadline = _options.MaxDelay == TimeSpan.Zero ? deadline
            : deadline + (_options.MaxArrivalWait is { } wait ? (long)(wait.TotalSeconds * Stopwatch.Frequency) : Volatile.Read(ref _batchTicks) / 2);
        long poll = Math.Max(1, Stopwatch.Frequency / 500); // 2 ms: an arriving request may fail to decode and never come
        bool open = true;
        while (batch.Count < BatchLimit()) // the share can fall as more requests arrive while the batch gathers
        {
            if (reader.TryRead(out var item))
            {
                if (item.Abandoned) Interlocked.Decrement(ref _queued);
                else batch.Add(item);
                continue;
            }
            if (batch.Count == 0) { if (!(open = WaitToRead(reader, Timeout.InfiniteTimeSpan))) break; continue; }
            long now = Stopwatch.GetTimestamp();
            long until = now < deadline ? deadline : Arriving > 0 ? Math.Min(arrivalDeadline, now + poll) : now;
            if (until <= now) break;
            if (!WaitToRead(reader, Stopwatch.GetElapsedTime(now, until)) && reader.Completion.IsCompleted) break;
        }
        // Images count as queued until their forward pass starts (also while the batch gathers).
        _metrics.QueueLength(Interlocked.Add(ref _queued, -batch.Count));
        return open || batch.Count > 0;
    }

    /// <summary>Blocks the worker until an image can be read (true), the wait runs out or the queue completes (false).</summary>
    private static bool WaitToRead(ChannelReader<Item> reader, TimeSpan wait)
    {
        using var timer = new CancellationTokenSource(wait);
        try
        {
            return reader.WaitToReadAsync(timer.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    // One batch of one image per worker. Not every batch size: oneDNN's own timing (ONEDNN_VERBOSE=all, resnet18_cntk) put the kernels
    // it builds for a new batch size at 5–10 ms in all, against hundreds of ms for the forward pass they serve.
    private void RunWarmUp()
    {
        var p = _model.Preprocessing;
        using var blank = zeros(1, p.Channels, p.CropSize, p.CropSize);
        var started = Stopwatch.GetTimestamp();
        using var output = _model.HasClassifier ? _model.Forward(blank) : _model.Features(blank);
        RecordBatchTime(Stopwatch.GetTimestamp() - started);
    }

    /// <summary>Folds one forward pass's time into the moving average (one part in four).</summary>
    private void RecordBatchTime(long ticks)
    {
        long old = Volatile.Read(ref _batchTicks);
        Volatile.Write(ref _batchTicks, old == 0 ? ticks : old + (ticks - old) / 4);
    }

    private void Run(List<Item> batch)
    {
        int running = Interlocked.Increment(ref _running);
        try
        {
            // A pass that starts alone, with nothing else waiting or arriving, takes every intra-op thread; one that starts
            // beside another pass, or while more requests are in flight than it holds (the other worker will start one
            // soon), takes its worker's share — so that under load every pass runs on the same threads for the whole pass.
            bool crowded = running > 1 || Queued > 0 || Volatile.Read(ref _requests) > batch.Count;
            if (_shareThreads) Runtime.TorchRuntime.SetCallingThreadIntraOpThreads(crowded ? Math.Max(1, _threads / _workers.Length) : _threads);
            RunGroups(batch);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    private void RunGroups(List<Item> batch)
    {
        foreach (var group in batch.GroupBy(i => i.Task))
        {
            var items = group.ToArray();
            var started = Stopwatch.GetTimestamp();
            try
            {
                using var scope = NewDisposeScope();
                var p = _model.Preprocessing;
                // Each image's pixels go straight into the batch tensor's memory: one copy, no batch-sized managed array.
                var input = empty(items.Length, p.Channels, p.CropSize, p.CropSize);
                for (int i = 0; i < items.Length; i++)
                {
                    using var slot = input[i];
                    items[i].Pixels.CopyTo(MemoryMarshal.Cast<byte, float>(slot.bytes));
                }
                if (group.Key == ImageTask.Classify)
                {
                    var logits = _model.Forward(input);
                    var predictions = Predictor.TopK(logits, items.Select(i => i.Source).ToArray(), items.Max(i => i.Top), _model.Labels);
                    for (int i = 0; i < items.Length; i++)
                        items[i].Done.TrySetResult(new ImageResult(predictions[i] with { Top = predictions[i].Top.Take(items[i].Top).ToArray() }, null));
                }
                else
                {
                    var features = _model.Features(input).contiguous();
                    var values = features.data<float>().ToArray();
                    int dim = (int)features.shape[1];
                    for (int i = 0; i < items.Length; i++)
                        items[i].Done.TrySetResult(new ImageResult(null, values.AsSpan(i * dim, dim).ToArray()));
                }
            }
            catch (Exception e)
            {
                foreach (var item in items) item.Done.TrySetException(e);
            }
            RecordBatchTime(Stopwatch.GetTimestamp() - started);
            _metrics.Batch(items.Length, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>Stops taking images, lets the workers finish the queued ones, and waits for them.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        var until = Stopwatch.StartNew();
        foreach (var w in _workers) w.Join(TimeSpan.FromSeconds(Math.Max(0, 30 - until.Elapsed.TotalSeconds)));
    }
}
