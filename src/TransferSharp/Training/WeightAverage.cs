using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>
/// An exponential moving average of a module's weights (timm's ModelEma, fastai's EMA callback): after every optimizer
/// step each floating tensor the task persists — parameters and BatchNorm statistics — moves towards the trained one,
/// <c>ema = d·ema + (1 − d)·w</c>, with the decay warmed up as <c>d = min(decay, (1 + t) / (10 + t))</c> so that the
/// few hundred steps of a transfer run are not dominated by the starting weights. Validation, the best epoch's snapshot
/// and the final model use the average; training continues on the raw weights.
/// </summary>
internal sealed class WeightAverage : IDisposable
{
    private readonly double _decay;
    private readonly List<(string Name, Tensor Live, Tensor Average)> _tensors = [];

    /// <summary>Starts the average at the module's current weights (or at <paramref name="resumed"/>, the average saved in
    /// the checkpoint <paramref name="checkpointPath"/>).</summary>
    public WeightAverage(nn.Module module, double decay, Func<string, bool> persist, IEnumerable<(string Name, Tensor Tensor)>? resumed = null,
        string? checkpointPath = null)
    {
        _decay = decay;
        var saved = resumed?.ToDictionary(t => t.Name, t => t.Tensor, StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (name, live) in module.state_dict())
        {
            if (!persist(name) || !live.is_floating_point()) continue;
            var start = live;
            if (saved is not null)
            {
                if (!saved.TryGetValue(name, out var s) || !s.shape.SequenceEqual(live.shape))
                    throw new ModelFileException(checkpointPath ?? "the checkpoint",
                        $"the checkpoint's weight average does not match the model at '{name}' (missing or another shape); start without resuming, or delete it");
                start = s;
            }
            // Every intermediate disposed here, none left to the finalizer thread (../shared/notes/torchsharp-memory.md).
            using var detached = start.detach();
            using var converted = detached.to(live.dtype, live.device);
            _tensors.Add((name, live, converted.clone().DetachFromDisposeScope()));
        }
    }

    /// <summary>One step of the average, after optimizer step <paramref name="step"/> (0-based) of the stage.</summary>
    public void Update(long step)
    {
        double d = Math.Min(_decay, (1.0 + step) / (10.0 + step));
        using var _ = no_grad();
        foreach (var (_, live, average) in _tensors) average.mul_(d).add_(live, alpha: 1 - d);
    }

    /// <summary>The averaged tensors by name (for checkpoints).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Tensors => _tensors.Select(t => (t.Name, t.Average));

    /// <summary>Puts the average into the module until the returned scope ends, then the trained weights back.</summary>
    public IDisposable Swapped()
    {
        using (no_grad())
        {
            foreach (var (_, live, average) in _tensors) Exchange(live, average);
        }
        return new Restore(this);
    }

    /// <summary>Leaves the average in the module for good (the end of a run without validation).</summary>
    public void CopyInto()
    {
        using var _ = no_grad();
        foreach (var (_, live, average) in _tensors) live.copy_(average);
    }

    private static void Exchange(Tensor a, Tensor b)
    {
        using var t = a.clone();
        a.copy_(b);
        b.copy_(t);
    }

    private sealed class Restore(WeightAverage owner) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            using var _ = no_grad();
            foreach (var (_, live, average) in owner._tensors) Exchange(live, average);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (_, _, average) in _tensors) average.Dispose();
        _tensors.Clear();
    }
}
