namespace TransferSharp.Serving;

/// <summary>How the endpoints batch and what they accept (the <c>transfer serve</c> flags).</summary>
public sealed record ServingOptions
{
    /// <summary>Most images in one forward pass.</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>How long the first image of a batch waits for others before the batch runs.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How much longer than <see cref="MaxDelay"/> a batch with room waits for requests already received whose
    /// images are still being read or decoded; null: half of the recent forward passes' time (a request left out waits
    /// for the next free worker and then its own pass). Zero waits for none; with a <see cref="MaxDelay"/> of zero no batch
    /// waits at all.</summary>
    public TimeSpan? MaxArrivalWait { get; init; }

    /// <summary>Forward passes that may run at once (each on its share of the intra-op threads); 0 chooses: two for
    /// TorchSharp where that is safe and measured faster on this machine's two cores, else one (docs/benchmarks.md, "Serving").</summary>
    public int Workers { get; init; }

    /// <summary>Most images waiting for a forward pass; a request that would exceed it is answered 429.</summary>
    public int MaxQueue { get; init; } = 256;

    /// <summary>Largest request body (one image, or all parts of a multipart request); larger is answered 413.</summary>
    public long MaxUploadBytes { get; init; } = 20L * 1024 * 1024;

    /// <summary>Most images in one multipart request.</summary>
    public int MaxImagesPerRequest { get; init; } = 64;

    /// <summary>Largest decoded image (width × height); larger is answered 413 before any pixel is decoded.</summary>
    public long MaxImagePixels { get; init; } = 40_000_000;

    /// <summary>How long a request may wait for its answer; past it the answer is 503.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many forward passes run at once for <paramref name="model"/>: <see cref="Workers"/>, or when that is 0,
    /// two for TorchSharp on two or more intra-op threads where each thread can have its own thread count and concurrent
    /// convolutions are safe on this platform (<see cref="Runtime.TorchRuntime.Avx512KernelFaultExposed"/>), else one.
    /// ONNX Runtime shares one thread pool among concurrent runs, so it gets one.</summary>
    public int WorkersFor(ServedModel model) =>
        Workers > 0 ? Workers
        : model.Engine == "torchsharp" && TorchSharp.torch.get_num_threads() >= 2 && Runtime.TorchRuntime.HasPerThreadIntraOpThreads
            && !Runtime.TorchRuntime.Avx512KernelFaultExposed ? 2 : 1;

    /// <summary>Checks the values, naming the wrong one.</summary>
    public void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatch), MaxBatch, "must be at least 1");
        if (MaxDelay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, "must not be negative");
        if (MaxArrivalWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxArrivalWait), MaxArrivalWait, "must not be negative");
        if (Workers < 0) throw new ArgumentOutOfRangeException(nameof(Workers), Workers, "must not be negative (0 chooses)");
        if (MaxQueue < 1) throw new ArgumentOutOfRangeException(nameof(MaxQueue), MaxQueue, "must be at least 1");
        if (MaxUploadBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxUploadBytes), MaxUploadBytes, "must be at least 1");
        if (MaxImagesPerRequest < 1) throw new ArgumentOutOfRangeException(nameof(MaxImagesPerRequest), MaxImagesPerRequest, "must be at least 1");
        if (MaxImagePixels < 1) throw new ArgumentOutOfRangeException(nameof(MaxImagePixels), MaxImagePixels, "must be at least 1");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "must be positive");
    }
}
