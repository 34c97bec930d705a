using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Onnx;

/// <summary>How to import an ONNX file.</summary>
public sealed record OnnxImportOptions
{
    /// <summary>Name of the graph (default: the file name without extension).</summary>
    public string? Name { get; init; }

    /// <summary>Height and width to assume when the file leaves them dynamic (default 224).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>The sequence length a text encoder with dynamic token inputs [batch, sequence] is traced at. Shape
    /// computations on it stay dynamic (the imported graph takes any length up to the model's maximum), which the importer
    /// recognises by its value: choose one no other dimension of the model has. The default, 7, is none of a BERT's.</summary>
    public int SequenceLength { get; init; } = 7;

    /// <summary>The node (ONNX node name, ONNX tensor name, or graph node name) whose output is the
    /// feature map; default: the last node with a spatial output larger than 1×1.</summary>
    public string? FeatureNode { get; init; }

    /// <summary>The ONNX graph output to import (default: the first).</summary>
    public string? Output { get; init; }
}

/// <summary>
/// An imported ONNX model: a <see cref="ModelGraph"/> in the same IR as the zoo's, and the weights
/// taken from its initializers (parameters named by module path, BatchNormalization statistics as
/// buffers). <see cref="CreateModule"/> gives a trainable <see cref="GraphModule"/>.
/// </summary>
public sealed class OnnxModel
{
    internal OnnxModel(string file, ModelGraph graph, IReadOnlyDictionary<string, ConstTensor> state, int opset, string producer,
        string onnxInput, string onnxOutput, IReadOnlyDictionary<string, string> nodeNames, IReadOnlyDictionary<string, string> metadata)
    {
        Metadata = metadata;
        File = file;
        Graph = graph;
        State = state;
        Opset = opset;
        Producer = producer;
        OnnxInput = onnxInput;
        OnnxOutput = onnxOutput;
        NodeNames = nodeNames;
    }

    /// <summary>The file it was imported from.</summary>
    public string File { get; }

    /// <summary>The layer graph.</summary>
    public ModelGraph Graph { get; }

    internal IReadOnlyDictionary<string, ConstTensor> State { get; }

    /// <summary>Names of the imported parameters and buffers (the state dict keys).</summary>
    public IReadOnlyCollection<string> StateNames => State.Keys.ToArray();

    /// <summary>Default-domain opset of the file.</summary>
    public int Opset { get; }

    /// <summary>Producer recorded in the file ("CNTK 2.6", "pytorch 1.13.1").</summary>
    public string Producer { get; }

    /// <summary>Name of the ONNX graph input the graph's "input" stands for.</summary>
    public string OnnxInput { get; }

    /// <summary>Name of the ONNX graph output the graph's output stands for.</summary>
    public string OnnxOutput { get; }

    /// <summary>The file's metadata_props (TransferSharp exports record preprocessing and labels there).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The preprocessing recorded in the file, or null.</summary>
    public Vision.Preprocessing.Preprocessing? Preprocessing => OnnxExporter.ReadPreprocessing(Metadata, File);

    /// <summary>Class names recorded in the file (empty when none).</summary>
    public IReadOnlyList<string> Labels => OnnxExporter.ReadLabels(Metadata, File);

    /// <summary>ONNX node names and tensor names → graph node names.</summary>
    public IReadOnlyDictionary<string, string> NodeNames { get; }

    /// <summary>The graph node for an ONNX node name, ONNX tensor name, or graph node name.</summary>
    public string ResolveNode(string name)
    {
        if (Graph.HasNode(name)) return name;
        if (NodeNames.TryGetValue(name, out var n)) return n;
        throw new GraphException($"{File}: no node or tensor named '{name}' in the imported graph");
    }

    /// <summary>A module running the graph, with the imported weights, in eval mode.</summary>
    public GraphModule CreateModule()
    {
        var module = new GraphModule(Graph);
        try
        {
            LoadInto(module);
        }
        catch
        {
            module.Dispose();
            throw;
        }
        module.eval();
        return module;
    }

    /// <summary>Copies the imported weights into a module built from this graph (or from a graph cut or
    /// extended from it: load that <see cref="LoadPolicy.Lenient"/>ly and the report lists what was skipped).
    /// BatchNorm counters, which ONNX does not carry, are reset.</summary>
    /// <exception cref="OnnxException">Exact or strict loading found missing, unexpected or mis-shaped tensors; nothing was copied.</exception>
    public LoadReport LoadInto(GraphModule module, LoadPolicy policy = LoadPolicy.Strict)
    {
        using var scope = NewDisposeScope();
        var tensors = State.Select(kv => (kv.Key, tensor(kv.Value.AsFloats()).reshape(kv.Value.Shape)));
        try
        {
            return StateLoader.Load(module, tensors, policy, File);
        }
        catch (StateDictMismatchException e)
        {
            throw new OnnxException(File, e.Reason, e);
        }
    }
}

internal static class OnnxModelChain
{
    /// <summary>One model feeding another: <paramref name="first"/>'s nodes (renamed under
    /// <paramref name="prefix"/>) compute the input of <paramref name="second"/>. The result keeps the
    /// second model's landmarks; the first's nodes join its first layer group.</summary>
    internal static OnnxModel Chain(OnnxModel first, string prefix, OnnxModel second, string name)
    {
        string Rename(string n) => n == ModelGraph.InputName ? n : prefix + "." + n;
        var firstOut = Rename(first.Graph.Output);
        var nodes = first.Graph.Nodes.Select(n => new Node(Rename(n.Name), n.Op, n.Inputs.Select(Rename).ToArray()))
            .Concat(second.Graph.Nodes.Select(n => n with { Inputs = n.Inputs.Select(i => i == ModelGraph.InputName ? firstOut : i).ToArray() }))
            .ToArray();
        var groups = second.Graph.Groups.ToList();
        if (groups.Count > 0) groups[0] = groups[0] with { Prefixes = [prefix, .. groups[0].Prefixes] };
        var graph = new ModelGraph(name, first.Graph.InputShape, nodes, second.Graph.Output, second.Graph.FeatureNode,
            second.Graph.ClassifierNode, groups);
        var state = new Dictionary<string, ConstTensor>(StringComparer.Ordinal);
        foreach (var (k, v) in first.State) state[prefix + "." + k] = v;
        foreach (var (k, v) in second.State) state[k] = v;
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in first.NodeNames) names[k] = Rename(v);
        foreach (var (k, v) in second.NodeNames) names[k] = v == ModelGraph.InputName ? firstOut : v;
        return new OnnxModel(second.File, graph, state, second.Opset, second.Producer, first.OnnxInput, second.OnnxOutput, names, second.Metadata);
    }
}
