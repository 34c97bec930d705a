using System.Collections;
using static TorchSharp.torch;

namespace TransferSharp.Weights;

/// <summary>
/// Named CPU tensors read from (or to be written to) a checkpoint, in file order, with optional string
/// metadata (safetensors' <c>__metadata__</c>). It owns its tensors: dispose it when done.
/// </summary>
public sealed class StateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates an empty state dict.</summary>
    public StateDict(string? source = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Source = source;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    /// <summary>Where the tensors came from (a file path), if anywhere.</summary>
    public string? Source { get; }

    /// <summary>String metadata stored with the tensors (empty when the format has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; internal set; }

    /// <summary>Adds a tensor, taking ownership of it (it is detached from any dispose scope).</summary>
    public void Add(string name, Tensor tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tensors.ContainsKey(name)) throw new ArgumentException($"the state dict already has a tensor named '{name}'", nameof(name));
        tensor.DetachFromDisposeScope();
        _tensors.Add(name, tensor);
        _order.Add(name);
    }

    /// <summary>Removes a tensor and hands its ownership to the caller.</summary>
    public Tensor Take(string name)
    {
        if (!_tensors.Remove(name, out var t)) throw new KeyNotFoundException($"no tensor named '{name}'");
        _order.Remove(name);
        return t;
    }

    /// <summary>Renames a tensor in place (keeps its position).</summary>
    public void Rename(string from, string to)
    {
        if (from == to) return;
        if (_tensors.ContainsKey(to)) throw new ArgumentException($"the state dict already has a tensor named '{to}'", nameof(to));
        if (!_tensors.Remove(from, out var t)) throw new KeyNotFoundException($"no tensor named '{from}'");
        _tensors[to] = t;
        _order[_order.IndexOf(from)] = to;
    }

    /// <summary>Replaces the tensor under a name (the old one is disposed).</summary>
    public void Replace(string name, Tensor tensor)
    {
        if (!_tensors.TryGetValue(name, out var old)) throw new KeyNotFoundException($"no tensor named '{name}'");
        if (ReferenceEquals(old, tensor)) return;
        tensor.DetachFromDisposeScope();
        _tensors[name] = tensor;
        old.Dispose();
    }

    /// <summary>Total number of elements.</summary>
    public long ElementCount => _tensors.Values.Sum(t => t.numel());

    /// <inheritdoc />
    public Tensor this[string key] => _tensors.TryGetValue(key, out var t) ? t
        : throw new KeyNotFoundException($"{Source ?? "the state dict"} has no tensor named '{key}'");

    /// <inheritdoc />
    public IEnumerable<string> Keys => _order;

    /// <inheritdoc />
    public IEnumerable<Tensor> Values => _order.Select(k => _tensors[k]);

    /// <inheritdoc />
    public int Count => _order.Count;

    /// <inheritdoc />
    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Tensor value) => _tensors.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, Tensor>(k, _tensors[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
        _order.Clear();
    }
}
