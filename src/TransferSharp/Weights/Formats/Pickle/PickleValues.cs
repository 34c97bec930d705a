using static TorchSharp.torch;

namespace TransferSharp.Weights.Pickle;

// Values the restricted unpickler produces. Python's None, bool, int, float, str and bytes map to
// null, bool, long (or BigInteger), double, string and byte[]; containers to the types below. Nothing
// here can execute anything: the only "callables" are the allowlisted globals, interpreted by us.

/// <summary>A Python list (or set).</summary>
internal sealed class PyList(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>A Python tuple.</summary>
internal sealed class PyTuple(object?[] items)
{
    public object?[] Items { get; } = items;
    public int Count => Items.Length;
    public object? this[int i] => Items[i];
}

/// <summary>A Python dict or OrderedDict, in insertion order.</summary>
internal sealed class PyDict
{
    private readonly List<KeyValuePair<object?, object?>> _items = [];
    private readonly Dictionary<string, int> _stringKeys = new(StringComparer.Ordinal);

    public IReadOnlyList<KeyValuePair<object?, object?>> Items => _items;

    public void Set(object? key, object? value)
    {
        if (key is string s && _stringKeys.TryGetValue(s, out var i))
        {
            _items[i] = new(key, value);
            return;
        }
        if (key is string k) _stringKeys[k] = _items.Count;
        _items.Add(new(key, value));
    }

    public bool TryGet(string key, out object? value)
    {
        if (_stringKeys.TryGetValue(key, out var i))
        {
            value = _items[i].Value;
            return true;
        }
        value = null;
        return false;
    }

    public int Count => _items.Count;
}

/// <summary>What an allowlisted global is.</summary>
internal enum GlobalKind
{
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    StorageType,
    DType,
    Device,
    Size,
    TensorType,
    CodecsEncode,
    Set,
}

/// <summary>An allowlisted global (GLOBAL/STACK_GLOBAL), interpreted only by the unpickler.</summary>
internal sealed record PyGlobal(string Module, string Name, GlobalKind Kind, ScalarType? DType = null)
{
    public string FullName => Module + "." + Name;
}

/// <summary>A storage named by a persistent id: which blob, its element type, its size.</summary>
/// <param name="Key">The storage key (zip: the entry under data/; legacy: the key in the storage list).</param>
/// <param name="DType">Element type of the storage (Byte for untyped storages).</param>
/// <param name="Numel">Elements in the storage.</param>
/// <param name="ElementOffset">Legacy storage views: first element of the view within the root storage.</param>
internal sealed record StorageRef(string Key, ScalarType DType, long Numel, long ElementOffset = 0);

/// <summary>A tensor as a strided view of a storage; its data is read only if it is used.</summary>
internal sealed record TensorRef(StorageRef Storage, ScalarType DType, long Offset, long[] Size, long[] Stride);
