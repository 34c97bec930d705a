using System.Globalization;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;

namespace TransferSharp.Onnx;

/// <summary>
/// Edits of a layer graph that fine-tuning an imported network needs: layer groups (by resolution stage or by
/// node-index ranges). Cutting is <see cref="ModelGraph.CutAt"/>, a new classifier <see cref="ModelGraph.WithClassifier"/>; weights
/// move into the new module by name with <see cref="OnnxModel.LoadInto"/> or <see cref="Weights.StateDictLoader.Load"/> under <see cref="LoadPolicy.Lenient"/>.
/// </summary>
public static class GraphSurgery
{
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
}
