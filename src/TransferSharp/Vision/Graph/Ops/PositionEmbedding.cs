using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// A learned absolute position embedding added to a token sequence (timm's <c>pos_embed</c>, named by the node itself):
/// [1, PrefixTokens + GridH·GridW, C], one row per prefix (class) token, then the patch grid row by row. Its second input
/// is the patch grid [N, C', h, w] the tokens were flattened from (only its size is read): at another grid the patch rows
/// are resampled the way timm's <c>resample_abs_pos_embed</c> does with its defaults (bicubic, antialiased — which
/// changes only a shrinking grid —, corners not aligned) and the prefix rows kept, so the model takes any input size that
/// is a multiple of its patch size.
/// </summary>
public sealed record PositionEmbeddingOp(int Channels, int GridH, int GridW, int PrefixTokens = 1) : Op
{
    /// <inheritdoc />
    public override int Arity => 2;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var (x, grid) = (inputs[0], inputs[1]);
        RequireRank(x, 3, Kind);
        RequireRank(grid, 4, Kind + "'s patch grid");
        if (x[2] != Channels) throw Bad($"{Kind} expects {Channels} channels, got shape [{string.Join(",", x)}]");
        if (x[1] != PrefixTokens + grid[2] * grid[3])
            throw Bad($"{Kind}: {x[1]} tokens are not {PrefixTokens} prefix tokens and a {grid[2]}×{grid[3]} patch grid");
        return (long[])x.Clone();
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new(ParameterShape.NodeItself, [1, PrefixTokens + (long)GridH * GridW, Channels])];

    /// <inheritdoc />
    public override Layer CreateLayer() => new PositionEmbeddingLayer(this);

    /// <summary>The embedding for an h × w patch grid: the stored one at its own grid, else resampled.</summary>
    internal Tensor At(Tensor embedding, long h, long w)
    {
        if (h == GridH && w == GridW) return embedding.alias();
        using var scope = NewDisposeScope();
        var prefix = embedding.narrow(1, 0, PrefixTokens);
        var grid = embedding.narrow(1, PrefixTokens, (long)GridH * GridW).reshape(1, GridH, GridW, Channels).permute(0, 3, 1, 2);
        var resized = F.interpolate(grid, [h, w], mode: InterpolationMode.Bicubic, align_corners: false, antialias: true);
        var rows = resized.permute(0, 2, 3, 1).reshape(1, h * w, Channels);
        return cat([prefix, rows], 1).MoveToOuterDisposeScope();
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        // The exported graph has a fixed patch grid: the embedding for it is resampled once, here.
        var grid = onnx.InputShapes[1];
        using var _ = no_grad();
        using var embedding = At(onnx.Parameter(ParameterShape.NodeItself), grid[2], grid[3]);
        onnx.Out("Add", [onnx.Inputs[0], onnx.Initializer(onnx.Node.Name, embedding)]);
    }

    /// <inheritdoc />
    public override string Describe() => $"{PrefixTokens}+{GridH}×{GridW}, {Channels}";
}

/// <summary>Adds the (resampled where needed) position embedding.</summary>
public sealed class PositionEmbeddingLayer : Layer
{
    private readonly PositionEmbeddingOp _op;

    /// <summary>Creates the layer (zeros until drawn or loaded).</summary>
    public PositionEmbeddingLayer(PositionEmbeddingOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => zeros(p.Shape));
    }

    /// <summary>timm's initialisation, <c>trunc_normal_(std=0.02)</c>: its bounds are ±2 absolute, 100σ, so a normal.</summary>
    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        NodeTensor!.normal_(0, 0.02, generator);
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var grid = inputs[1];
        using var embedding = _op.At(NodeTensor!, grid.shape[2], grid.shape[3]);
        return inputs[0] + embedding;
    }
}
