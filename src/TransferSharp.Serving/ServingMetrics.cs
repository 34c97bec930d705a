using System.Diagnostics;
using Prometheus;

namespace TransferSharp.Serving;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), in a registry of its own so that the host's default registry
/// and its other metrics are left alone: requests by route and status, request latency, batch sizes and times,
/// queue length, images served and images per second over the last 10 seconds.
/// </summary>
public sealed class ServingMetrics
{
    private static readonly TimeSpan RateWindow = TimeSpan.FromSeconds(10);
    private readonly Counter _requests;
    private readonly Histogram _requestSeconds;
    private readonly Histogram _batchSize;
    private readonly Histogram _batchSeconds;
    private readonly Gauge _queueLength;
    private readonly Counter _images;
    private readonly Gauge _imagesPerSecond;
    private readonly Queue<(long Ticks, int Images)> _recent = new();
    private readonly object _recentLock = new();

    /// <summary>Creates the metrics in a new registry.</summary>
    public ServingMetrics(int maxBatch)
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        _requests = factory.CreateCounter("transfersharp_http_requests_total", "HTTP requests answered, by route and status code.",
            new CounterConfiguration { LabelNames = ["route", "status"] });
        _requestSeconds = factory.CreateHistogram("transfersharp_http_request_duration_seconds", "Time from request to answer, by route.",
            new HistogramConfiguration { LabelNames = ["route"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        var sizes = new List<double>();
        for (int s = 1; s < maxBatch; s *= 2) sizes.Add(s);
        sizes.Add(maxBatch);
        _batchSize = factory.CreateHistogram("transfersharp_batch_size", "Images per forward pass.",
            new HistogramConfiguration { Buckets = [.. sizes] });
        _batchSeconds = factory.CreateHistogram("transfersharp_batch_duration_seconds", "Time of one forward pass.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        _queueLength = factory.CreateGauge("transfersharp_queue_length", "Images waiting for a forward pass.");
        _images = factory.CreateCounter("transfersharp_images_total", "Images run through the model.");
        _imagesPerSecond = factory.CreateGauge("transfersharp_images_per_second", "Images run through the model per second, over the last 10 seconds.");
        Registry.AddBeforeCollectCallback(() => _imagesPerSecond.Set(ImagesPerSecond()));
    }

    /// <summary>The registry <c>/metrics</c> exports.</summary>
    public CollectorRegistry Registry { get; }

    internal void Request(string route, int status, TimeSpan elapsed)
    {
        _requests.WithLabels(route, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        _requestSeconds.WithLabels(route).Observe(elapsed.TotalSeconds);
    }

    internal void QueueLength(int images) => _queueLength.Set(images);

    internal void Batch(int images, TimeSpan elapsed)
    {
        _batchSize.Observe(images);
        _batchSeconds.Observe(elapsed.TotalSeconds);
        _images.Inc(images);
        lock (_recentLock)
        {
            _recent.Enqueue((Stopwatch.GetTimestamp(), images));
            DropOld();
        }
    }

    private double ImagesPerSecond()
    {
        lock (_recentLock)
        {
            DropOld();
            return _recent.Sum(r => r.Images) / RateWindow.TotalSeconds;
        }
    }

    private void DropOld()
    {
        long from = Stopwatch.GetTimestamp() - (long)(RateWindow.TotalSeconds * Stopwatch.Frequency);
        while (_recent.Count > 0 && _recent.Peek().Ticks < from) _recent.Dequeue();
    }
}
