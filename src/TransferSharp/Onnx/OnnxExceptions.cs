namespace TransferSharp.Onnx;

/// <summary>An ONNX file cannot be read or used: corrupt, truncated, malformed, or hostile. The
/// message names the file and what was wrong.</summary>
public class OnnxException : InvalidFileException
{
    /// <summary>Creates the exception for a file.</summary>
    public OnnxException(string file, string message, Exception? inner = null)
        : base(file, message, inner)
    {
    }
}

/// <summary>One node the importer cannot translate.</summary>
/// <param name="OpType">ONNX operator type ("Resize").</param>
/// <param name="NodeName">The node's name in the file (or "#index" when unnamed).</param>
/// <param name="Opset">Opset of the operator's domain.</param>
/// <param name="Reason">What is missing ("operator not supported", or the attribute combination).</param>
public sealed record UnsupportedNode(string OpType, string NodeName, int Opset, string Reason);

/// <summary>The model uses operators (or operator variants) the importer does not translate. Every such
/// node is listed; it is raised before any weight is read.</summary>
public sealed class OnnxUnsupportedException : OnnxException
{
    /// <summary>Creates the exception.</summary>
    public OnnxUnsupportedException(string file, IReadOnlyList<UnsupportedNode> nodes)
        : base(file, Describe(nodes))
    {
        Nodes = nodes;
    }

    /// <summary>The nodes that cannot be imported.</summary>
    public IReadOnlyList<UnsupportedNode> Nodes { get; }

    private static string Describe(IReadOnlyList<UnsupportedNode> nodes)
    {
        var lines = nodes.Take(20).Select(n => $"  {n.OpType} (opset {n.Opset}) at node '{n.NodeName}': {n.Reason}");
        return $"{nodes.Count} node(s) cannot be imported:\n{string.Join("\n", lines)}"
            + (nodes.Count > 20 ? $"\n  … and {nodes.Count - 20} more" : "");
    }
}
