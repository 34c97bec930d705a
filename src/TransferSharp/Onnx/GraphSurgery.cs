using System.Globalization;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Onnx;

/// <summary>
/// Edits of a layer graph that fine-tuning an imported network needs: cut at a named node, attach a
/// new classifier, and define layer groups (by resolution stage or by node-index ranges). Weights move
/// between the old and the new module by name with <see cref="CopyState"/>.
/// </summary>
public static class GraphSurgery
{
    /// <summary>A graph whose output is <paramref name="node"/>: only the nodes it needs remain; the
    /// classifier is dropped; the feature node becomes <paramref name="node"/> when it is a feature map.</summary>
    public static ModelGraph CutAt(ModelGraph graph, string node)
    {
        var keep = graph.Needed([node]);
        var names = keep.Select(i => graph.Nodes[i].Name).ToHashSet(StringComparer.Ordinal);
        var nodes = keep.Select(i => graph.Nodes[i]).ToArray();
        string? feature = graph.Shapes[node].Length == 4 ? node
            : graph.FeatureNode is { } f && names.Contains(f) ? f : null;
        var groups = graph.Groups.Select(g => g with { Prefixes = g.Prefixes.Where(p => names.Contains(p) || names.Any(n => n.StartsWith(p + ".", StringComparison.Ordinal))).ToArray() })
            .Where(g => g.Prefixes.Count > 0).ToArray();
        return new ModelGraph(graph.Name, graph.InputShape, nodes, node, feature, null, groups);
    }

    /// <summary>Appends a new head to the graph output: global pooling when the output is a feature
    /// map, optional dropout, and a randomly initialised linear classifier named <paramref name="name"/>,
    /// marked as the classifier and placed in a layer group "head".</summary>
    public static ModelGraph WithClassifier(ModelGraph graph, int numClasses, string name = "fc", double dropRate = 0, PoolKind pool = PoolKind.Avg)
    {
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), "a classifier needs at least one class");
        if (graph.HasNode(name)) throw new GraphException($"graph '{graph.Name}' already has a node '{name}'");
        var nodes = graph.Nodes.ToList();
        var shape = graph.Shapes[graph.Output];
        string x = graph.Output;
        string? feature = graph.FeatureNode;
        var added = new List<string>();
        string Unique(string baseName)
        {
            var c = baseName;
            for (int k = 1; graph.HasNode(c) || added.Contains(c); k++) c = baseName + "_" + k.ToString(CultureInfo.InvariantCulture);
            return c;
        }
        if (shape.Length == 4)
        {
            feature = graph.Output;
            var p = Unique(name + "_pool");
            nodes.Add(new Node(p, new GlobalPoolOp(pool, KeepDims: false), [x]));
            added.Add(p);
            x = p;
            shape = [shape[0], shape[1]];
        }
        else if (shape.Length != 2) throw new GraphException($"graph '{graph.Name}': output shape [{string.Join(",", shape)}] is neither a feature map nor a feature vector");
        if (dropRate > 0)
        {
            var d = Unique(name + "_drop");
            nodes.Add(new Node(d, new DropoutOp(dropRate), [x]));
            added.Add(d);
            x = d;
        }
        nodes.Add(new Node(name, new LinearOp((int)shape[1], numClasses), [x]));
        added.Add(name);
        var groups = graph.Groups.ToList();
        int head = groups.FindIndex(g => g.Name == "head");
        if (head >= 0) groups[head] = groups[head] with { Prefixes = [.. groups[head].Prefixes, .. added] };
        else groups.Add(new LayerGroup("head", added));
        return new ModelGraph(graph.Name, graph.InputShape, nodes, name, feature, name, groups);
    }

    /// <summary>Layer groups by resolution: a new stage starts wherever a node's output is spatially
    /// smaller than the stage so far ("stage0", "stage1", …); nodes after the feature node form "head".</summary>
    public static IReadOnlyList<LayerGroup> GroupsByResolution(ModelGraph graph)
    {
        int featureIndex = graph.FeatureNode is { } f ? graph.IndexOf(f) : graph.Nodes.Count - 1;
        var stages = new List<List<string>> { new() };
        long area = long.MaxValue;
        for (int i = 0; i <= featureIndex; i++)
        {
            var n = graph.Nodes[i];
            var s = graph.Shapes[n.Name];
            if (s.Length == 4 && s[2] * s[3] < area)
            {
                if (stages[^1].Count > 0 && area != long.MaxValue) stages.Add([]);
                area = s[2] * s[3];
            }
            stages[^1].Add(n.Name);
        }
        var groups = stages.Where(s => s.Count > 0).Select((s, k) => new LayerGroup("stage" + k.ToString(CultureInfo.InvariantCulture), s)).ToList();
        var head = graph.Nodes.Skip(featureIndex + 1).Select(n => n.Name).ToArray();
        if (head.Length > 0) groups.Add(new LayerGroup("head", head));
        return groups;
    }

    /// <summary>Layer groups from explicit ranges of node indices (inclusive, in execution order);
    /// nodes outside every range belong to no group (and so are never unfrozen by group).</summary>
    public static ModelGraph WithGroupsByIndex(ModelGraph graph, params (string Group, int First, int Last)[] ranges)
    {
        var groups = new List<LayerGroup>();
        foreach (var (name, first, last) in ranges)
        {
            if (first < 0 || last >= graph.Nodes.Count || first > last)
                throw new ArgumentOutOfRangeException(nameof(ranges), $"range {first}..{last} of group '{name}' is outside 0..{graph.Nodes.Count - 1}");
            groups.Add(new LayerGroup(name, graph.Nodes.Skip(first).Take(last - first + 1).Select(n => n.Name).ToArray()));
        }
        return graph.With(groups: groups);
    }

    /// <summary>Layer groups from ranges of node names (first and last inclusive).</summary>
    public static ModelGraph WithGroupsByNodes(ModelGraph graph, params (string Group, string First, string Last)[] ranges) =>
        WithGroupsByIndex(graph, ranges.Select(r => (r.Group, graph.IndexOf(r.First), graph.IndexOf(r.Last))).ToArray());

    /// <summary>Copies every parameter and buffer that both modules have under the same name and shape
    /// (e.g. from an imported model into a cut-and-extended copy); returns how many were copied.</summary>
    public static int CopyState(GraphModule from, GraphModule to) => to.CopyMatchingFrom(from);
}
