using System.Globalization;
using System.Text;

namespace TransferSharp.Vision.Graph;

/// <summary>One row of a model summary.</summary>
public sealed record SummaryRow(string Name, string Kind, string Arguments, long[] OutputShape, long Parameters, long Macs, string? Group);

/// <summary>Layers, output shapes, parameter counts and multiply-accumulates of a model at an input size.</summary>
public sealed record ModelSummary(string Model, long[] InputShape, IReadOnlyList<SummaryRow> Rows, long Parameters, long TrainableParameters, long Macs)
{
    /// <summary>Floating-point operations, counted as 2 per multiply-accumulate.</summary>
    public long Flops => 2 * Macs;

    internal static ModelSummary Of(GraphModule model, long[] inputShape)
    {
        var graph = model.Graph;
        var shapes = graph.InferShapes(inputShape);
        var rows = new List<SummaryRow>();
        long macs = 0;
        foreach (var node in graph.Nodes)
        {
            var ins = node.Inputs.Select(i => shapes[i]).ToList();
            long m = node.Op.Macs(ins, shapes[node.Name]);
            macs += m;
            long p = model.LayerOf(node.Name).parameters().Sum(t => t.numel());
            rows.Add(new SummaryRow(node.Name, node.Op.Kind, node.Op.Describe(), shapes[node.Name], p, m, graph.GroupOf(node.Name)?.Name));
        }
        long total = model.parameters().Sum(t => t.numel());
        long trainable = model.parameters().Where(t => t.requires_grad).Sum(t => t.numel());
        return new ModelSummary(graph.Name, inputShape, rows, total, trainable, macs);
    }

    /// <summary>A plain-text table.</summary>
    public string ToText(bool parametricOnly = false)
    {
        var sb = new StringBuilder();
        var rows = parametricOnly ? Rows.Where(r => r.Parameters > 0).ToList() : Rows.ToList();
        int w = Math.Max(20, rows.Count == 0 ? 0 : rows.Max(r => r.Name.Length));
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"layer".PadRight(w)}  {"op",-16} {"output",-20} {"params",12} {"MACs",14}");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Name.PadRight(w)}  {r.Kind,-16} {"[" + string.Join(",", r.OutputShape) + "]",-20} {r.Parameters,12:N0} {r.Macs,14:N0}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"input [{string.Join(",", InputShape)}]: {Parameters:N0} parameters ({TrainableParameters:N0} trainable), {Macs / 1e9:F3} GMACs = {Flops / 1e9:F3} GFLOPs");
        return sb.ToString();
    }
}
