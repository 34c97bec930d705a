using System.Globalization;
using System.Numerics;

namespace TransferSharp.Weights.Pickle;

/// <summary>
/// Finds the state dict in an unpickled checkpoint: the dict of name → tensor itself, or one wrapped
/// as <c>{"state_dict": …}</c>, <c>{"model": …}</c>, <c>{"model_state": …}</c> and the like (training
/// scripts save epochs, arguments and optimizer state beside it). Entries that are not tensors are
/// plain data by construction (the unpickler refuses anything else) and are ignored; top-level
/// scalars and strings are kept as metadata.
/// </summary>
internal static class StateDictExtractor
{
    private static readonly string[] Wrappers =
    [
        "state_dict", "model_state_dict", "model_state", "model", "module", "net", "network", "params", "weights",
        "state_dict_ema", "model_ema",
    ];

    private const int MaxDepth = 4;

    public static (List<(string Name, TensorRef Tensor)> Tensors, Dictionary<string, string> Metadata) Extract(object? root, string path)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root is PyDict top)
        {
            foreach (var (k, v) in top.Items)
            {
                if (k is string key && Scalar(v) is { } text) metadata[key] = text;
            }
        }
        var found = Find(root, 0)
            ?? throw new CheckpointFormatException(path, root is PyDict d
                ? $"no state dict found: the top-level dict has no tensors and none of the usual wrappers ({string.Join(", ", Wrappers)}); its keys are: {string.Join(", ", d.Items.Take(20).Select(i => RestrictedUnpickler.Describe(i.Key) == "str" ? (string)i.Key! : RestrictedUnpickler.Describe(i.Key)))}"
                : $"no state dict found: the checkpoint holds a {RestrictedUnpickler.Describe(root)}, not a dict of tensors");
        var tensors = new List<(string, TensorRef)>();
        foreach (var (k, v) in found.Items)
        {
            if (k is string name && v is TensorRef t) tensors.Add((name, t));
        }
        return (tensors, metadata);
    }

    private static PyDict? Find(object? value, int depth)
    {
        if (value is not PyDict dict || depth > MaxDepth) return null;
        if (dict.Items.Any(i => i.Key is string && i.Value is TensorRef)) return dict;
        foreach (var w in Wrappers)
        {
            if (dict.TryGet(w, out var inner) && Find(inner, depth + 1) is { } found) return found;
        }
        return null;
    }

    private static string? Scalar(object? v) => v switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger big => big.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => null,
    };
}
