using Google.Protobuf;
using OnnxProto = global::Onnx;

namespace TransferSharp.Onnx;

/// <summary>Reads an ONNX file and checks its structure (opset, producers, order, sizes) before any
/// weight is decoded.</summary>
internal static class OnnxModelFile
{
    internal const int MinOpset = 7;
    internal const int MaxOpset = 21;

    /// <summary>The eval transform of an ONNX file that records none: ImageNet's mean and std with torchvision's 0.875
    /// crop ratio at the file's input size.</summary>
    internal static Vision.Preprocessing.Preprocessing DefaultPreprocessing(long size) =>
        Vision.Preprocessing.Preprocessing.ImageNet.AtCropSize((int)size);

    /// <summary>Parses the protobuf; corrupt or truncated files raise <see cref="OnnxException"/>.</summary>
    internal static OnnxProto.ModelProto Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file '{path}' does not exist", path);
        OnnxProto.ModelProto model;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            model = OnnxProto.ModelProto.Parser.ParseFrom(fs);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxException(path, $"not a valid ONNX model (corrupt or truncated protobuf: {e.Message})", e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new OnnxException(path, "not an ONNX model: it holds no graph nodes (empty, truncated, or another kind of file)");
        return model;
    }

    /// <summary>The file's <c>metadata_props</c> as a dictionary; a key given twice keeps its last value.</summary>
    internal static Dictionary<string, string> Metadata(OnnxProto.ModelProto model) =>
        model.MetadataProps.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);

    /// <summary>The graph inputs that are not initializers (the inputs a caller feeds).</summary>
    internal static List<OnnxProto.ValueInfoProto> FedInputs(OnnxProto.GraphProto graph)
    {
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
    }

    /// <summary>The default-domain opset the model declares.</summary>
    internal static int Opset(string path, OnnxProto.ModelProto model)
    {
        var entry = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (entry is null)
        {
            // IR version 3 files written before opset_import was mandatory run opset 1.
            throw new OnnxException(path, "declares no opset for the default ONNX domain");
        }
        if (entry.Version < MinOpset || entry.Version > MaxOpset)
            throw new OnnxException(path, $"uses opset {entry.Version}; the importer reads opsets {MinOpset}–{MaxOpset} (convert it with onnx.version_converter)");
        return (int)entry.Version;
    }

    /// <summary>Nodes in an order where every input is produced first; reports missing tensors and cycles.</summary>
    internal static List<OnnxProto.NodeProto> SortAndCheck(string path, OnnxProto.GraphProto graph)
    {
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer) produced.Add(t.Name);
        foreach (var i in graph.Input) produced.Add(i.Name);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            foreach (var o in graph.Node[i].Output)
            {
                if (o.Length == 0) continue;
                if (produced.Contains(o) || !producer.TryAdd(o, i))
                    throw new OnnxException(path, $"tensor '{o}' is produced twice (by node {Label(graph.Node[i], i)} and elsewhere)");
            }
        }
        var indegree = new int[graph.Node.Count];
        var consumers = new List<int>[graph.Node.Count];
        for (int i = 0; i < graph.Node.Count; i++)
        {
            consumers[i] = [];
        }
        for (int i = 0; i < graph.Node.Count; i++)
        {
            foreach (var input in graph.Node[i].Input.Distinct())
            {
                if (input.Length == 0 || produced.Contains(input)) continue;
                if (!producer.TryGetValue(input, out var p))
                    throw new OnnxException(path, $"node {Label(graph.Node[i], i)} ({graph.Node[i].OpType}) reads tensor '{input}', which no node, initializer or graph input produces");
                indegree[i]++;
                consumers[p].Add(i);
            }
        }
        foreach (var o in graph.Output)
        {
            if (!produced.Contains(o.Name) && !producer.ContainsKey(o.Name))
                throw new OnnxException(path, $"graph output '{o.Name}' is produced by no node");
        }
        // Kahn's algorithm, keeping the file's order among ready nodes.
        var ready = new SortedSet<int>(Enumerable.Range(0, graph.Node.Count).Where(i => indegree[i] == 0));
        var order = new List<OnnxProto.NodeProto>(graph.Node.Count);
        while (ready.Count > 0)
        {
            int i = ready.Min;
            ready.Remove(i);
            order.Add(graph.Node[i]);
            foreach (var c in consumers[i]) if (--indegree[c] == 0) ready.Add(c);
        }
        if (order.Count < graph.Node.Count)
        {
            var stuck = Enumerable.Range(0, graph.Node.Count).Where(i => indegree[i] > 0).Take(5).Select(i => Label(graph.Node[i], i));
            throw new OnnxException(path, $"the graph has a cycle: nodes {string.Join(", ", stuck)} depend on each other");
        }
        return order;
    }

    internal static string Label(OnnxProto.NodeProto n, int index) => n.Name.Length > 0 ? $"'{n.Name}'" : $"#{index}";
}
