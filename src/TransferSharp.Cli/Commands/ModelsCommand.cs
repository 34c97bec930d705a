using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer models`: the zoo.</summary>
public sealed class ModelsCommand : Command<CommonSettings>
{
    public sealed record ModelRow(string Name, string Family, string Reference, IReadOnlyList<string> Aliases, long Parameters,
        int InputSize, int NumFeatures);

    public override int Execute(CommandContext context, CommonSettings settings, CancellationToken cancellation)
    {
        var rows = ModelZoo.Entries.Select(e =>
        {
            var g = e.Build();
            return new ModelRow(e.Name, e.Family, $"{e.Reference} {e.ReferenceModel}", e.Aliases, ParameterCount(g), e.NativeSize, g.NumFeatures);
        }).ToList();
        if (settings.Json)
        {
            Json.Print(rows);
            return 0;
        }
        var t = new Table().AddColumns("model", "aliases", "reference", "params", "input", "features");
        foreach (var r in rows)
            t.AddRow(r.Name, string.Join(", ", r.Aliases), r.Reference, $"{r.Parameters / 1e6:F1}M", $"{r.InputSize}²", r.NumFeatures.ToString());
        AnsiConsole.Write(t);
        return 0;
    }

    /// <summary>Parameters from the graph's ops, without allocating the model.</summary>
    internal static long ParameterCount(ModelGraph g) => g.Nodes.Sum(n => n.Op switch
    {
        Conv2dOp c => (long)c.OutChannels * (c.InChannels / c.Groups) * c.Kernel.H * c.Kernel.W + (c.Bias ? c.OutChannels : 0),
        LinearOp l => (long)l.OutFeatures * l.InFeatures + (l.Bias ? l.OutFeatures : 0),
        BatchNormOp b => 2L * b.Features,
        GroupNormOp gn => gn.Affine ? 2L * gn.Channels : 0,
        ConvTranspose2dOp t => (long)t.InChannels * (t.OutChannels / t.Groups) * t.Kernel.H * t.Kernel.W + (t.Bias ? t.OutChannels : 0),
        _ => 0,
    });
}
