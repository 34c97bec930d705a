using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>How strictly named tensors must fit the module they are loaded into.</summary>
public enum LoadPolicy
{
    /// <summary>The names and shapes are exactly the module's: nothing is renamed, adapted or left out. For files
    /// TransferSharp wrote itself (model files, checkpoints, clones), where any difference means another model.</summary>
    Exact,
    /// <summary>PyTorch's <c>load_state_dict(strict=True)</c> plus the transfer-learning mapping where the loader
    /// knows the architecture: known renames, a classifier of another size left initialised, the first
    /// convolution adapted to the input channels. Anything else missing, unexpected or mis-shaped is an error.</summary>
    Strict,
    /// <summary>What matches by name and shape (after the same mapping as <see cref="Strict"/>) is copied;
    /// the report lists what was not.</summary>
    Lenient,
}

/// <summary>
/// What a loader that knows the architecture adds to plain name matching (the Weights layer's zoo-aware
/// mapping). The core calls it only under <see cref="LoadPolicy.Strict"/> and <see cref="LoadPolicy.Lenient"/>;
/// the defaults change nothing.
/// </summary>
internal abstract class StateMapping
{
    /// <summary>What a mis-shaped tensor becomes.</summary>
    internal enum ShapeFit { Mismatch, Adapt, KeepInitialised }

    /// <summary>The module key a source key stands for and whether the source tensor is reshaped to the module's
    /// shape; null when the key belongs to a part the module was built without (reported as dropped).</summary>
    public virtual (string Key, bool Reshape)? Map(string sourceKey) => (sourceKey, false);

    /// <summary>True when a module key the source lacks stays initialised on purpose (a new head).</summary>
    public virtual bool KeepInitialised(string moduleKey, IReadOnlyCollection<string> mappedKeys) => false;

    /// <summary>What a source tensor of another shape than the module's becomes.</summary>
    public virtual ShapeFit FitShape(string moduleKey, long[] sourceShape, long[] moduleShape) => ShapeFit.Mismatch;

    /// <summary>The source tensor in the module's shape, for a key <see cref="FitShape"/> said <c>Adapt</c> to.</summary>
    public virtual Tensor Adapt(string moduleKey, Tensor source, long[] moduleShape) => throw new NotSupportedException();

    /// <summary>Module keys that must stay initialised when <paramref name="moduleKey"/> does (a classifier's
    /// bias must not keep the checkpoint's when its weight is new).</summary>
    public virtual IEnumerable<string> Companions(string moduleKey) => [];
}

/// <summary>
/// The one way named tensors are copied into a module (pretrained checkpoints, model files, training
/// checkpoints, ONNX initializers, clones, text classifiers). It compares everything first, copies nothing
/// when a non-lenient check fails, converts dtype and device in the copy, and says what happened in a
/// <see cref="LoadReport"/>.
/// </summary>
internal static class StateLoader
{
    private const string BatchCountSuffix = ".num_batches_tracked";

    /// <summary>Loads <paramref name="state"/> into <paramref name="module"/> under <paramref name="policy"/>.</summary>
    /// <param name="module">The module; its parameters and buffers are overwritten in place.</param>
    /// <param name="state">Named tensors (any dtype, any device); the caller keeps ownership.</param>
    /// <param name="policy">How strictly the names and shapes must fit.</param>
    /// <param name="source">Where the tensors came from (a file path or a description), for the report and errors.</param>
    /// <param name="mapping">The architecture-aware mapping, if the caller has one (ignored under <see cref="LoadPolicy.Exact"/>).</param>
    /// <param name="include">The module keys that take part (all when null): a training checkpoint holds only the trained ones.</param>
    /// <exception cref="StateDictMismatchException">A non-lenient check failed; nothing was copied.</exception>
    public static LoadReport Load(nn.Module module, IEnumerable<(string Name, Tensor Tensor)> state, LoadPolicy policy, string source,
        StateMapping? mapping = null, Func<string, bool>? include = null)
    {
        if (policy == LoadPolicy.Exact) mapping = null;
        var target = module.state_dict().Where(kv => include is null || include(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

        // 1. Source names to module names.
        var mapped = new Dictionary<string, (Tensor Tensor, bool Reshape)>(StringComparer.Ordinal);
        var renamed = new List<(string, string)>();
        var unexpected = new List<string>();
        var dropped = new List<string>();
        foreach (var (key, tensor) in state)
        {
            if ((mapping is null ? (key, false) : mapping.Map(key)) is not var (to, reshape))
            {
                dropped.Add(key);
                continue;
            }
            if (to != key) renamed.Add((key, to));
            if (!target.ContainsKey(to) || !mapped.TryAdd(to, (tensor, reshape))) unexpected.Add(key);
        }

        // 2. Every module key: copied, adapted, left initialised, or a problem.
        var copies = new List<(string Key, Tensor Source, bool Reshape)>();
        var adapt = new List<(string Key, Tensor Source)>();
        var missing = new List<string>();
        var misShaped = new List<ShapeMismatch>();
        var reinitialised = new List<string>();
        var resetCounters = new List<string>();
        foreach (var (key, dst) in target)
        {
            if (!mapped.TryGetValue(key, out var src))
            {
                // PyTorch's BatchNorm fills a counter absent from old checkpoints (before 0.4.1) and ONNX files with 0.
                if (policy != LoadPolicy.Exact && key.EndsWith(BatchCountSuffix, StringComparison.Ordinal)) resetCounters.Add(key);
                else if (mapping is not null && mapping.KeepInitialised(key, mapped.Keys)) reinitialised.Add(key);
                else missing.Add(key);
                continue;
            }
            var srcShape = src.Tensor.shape;
            if (srcShape.SequenceEqual(dst.shape)) copies.Add((key, src.Tensor, false));
            else if (src.Reshape && src.Tensor.numel() == dst.numel()) copies.Add((key, src.Tensor, true));
            else
            {
                switch (mapping?.FitShape(key, srcShape, dst.shape) ?? StateMapping.ShapeFit.Mismatch)
                {
                    case StateMapping.ShapeFit.Adapt: adapt.Add((key, src.Tensor)); break;
                    case StateMapping.ShapeFit.KeepInitialised: reinitialised.Add(key); break;
                    default: misShaped.Add(new ShapeMismatch(key, dst.shape, srcShape)); break;
                }
            }
        }
        if (mapping is not null)
        {
            foreach (var key in reinitialised.ToList())
            {
                foreach (var companion in mapping.Companions(key))
                {
                    if (copies.FindIndex(c => c.Key == companion) is var i and >= 0)
                    {
                        copies.RemoveAt(i);
                        reinitialised.Add(companion);
                    }
                }
            }
        }

        var report = new LoadReport
        {
            Model = module is GraphModule g ? g.Graph.Name : module.GetName(),
            Policy = policy,
            Loaded = [.. copies.Select(c => c.Key), .. adapt.Select(a => a.Key)],
            Missing = missing,
            Unexpected = unexpected,
            MisShaped = misShaped,
            Reinitialised = reinitialised,
            Adapted = adapt.Select(a => a.Key).ToList(),
            Dropped = dropped,
            Renamed = renamed,
            HeadLoaded = module is GraphModule { Graph.ClassifierNode: { } cls } && copies.Any(c => NodeOf(c.Key) == cls),
        };
        if (policy != LoadPolicy.Lenient && !report.IsExact) throw new StateDictMismatchException(source, report);

        // 3. Copy: copy_ converts dtype and device; every temporary dies with its scope.
        using (no_grad())
        {
            foreach (var (key, src, reshape) in copies)
            {
                using var scope = NewDisposeScope();
                var dst = target[key];
                dst.copy_(reshape ? src.reshape(dst.shape) : src);
            }
            foreach (var (key, src) in adapt)
            {
                using var scope = NewDisposeScope();
                var dst = target[key];
                dst.copy_(mapping!.Adapt(key, src, dst.shape));
            }
            foreach (var key in resetCounters) target[key].zero_();
        }
        return report;
    }

    /// <summary>Loads named tensors held in a dictionary (a state dict, a safetensors file).</summary>
    public static LoadReport Load(nn.Module module, IReadOnlyDictionary<string, Tensor> state, LoadPolicy policy, string source,
        StateMapping? mapping = null, Func<string, bool>? include = null) =>
        Load(module, state.Select(kv => (kv.Key, kv.Value)), policy, source, mapping, include);

    /// <summary>A new module of the same graph holding a copy of <paramref name="model"/>'s tensors (on the CPU).</summary>
    public static GraphModule Clone(GraphModule model)
    {
        var copy = new GraphModule(model.Graph);
        try
        {
            Load(copy, model.state_dict(), LoadPolicy.Exact, model.Graph.Name);
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>The node a state key belongs to ("layer1.0.conv1.weight" → "layer1.0.conv1").</summary>
    internal static string? NodeOf(string key)
    {
        int dot = key.LastIndexOf('.');
        return dot < 0 ? null : key[..dot];
    }
}
