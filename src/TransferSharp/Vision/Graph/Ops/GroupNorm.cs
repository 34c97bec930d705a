using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransferSharp.Vision.Graph;

/// <summary>Group normalisation (PyTorch semantics).</summary>
public sealed record GroupNormOp(int Groups, int Channels, double Eps = 1e-5, bool Affine = true) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 2 || x[1] != Channels) throw Bad($"GroupNorm expects {Channels} channels");
        return x;
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => Affine ? [new("weight", [Channels]), new("bias", [Channels])] : [];

    /// <inheritdoc />
    public override Layer CreateLayer() => new GroupNormLayer(this);

    /// <inheritdoc />
    public override string Describe() => $"{Groups} groups, {Channels}";
}

/// <summary>Group normalisation.</summary>
public sealed class GroupNormLayer : Layer
{
    private readonly GroupNormOp _op;

    /// <summary>Creates the layer.</summary>
    public GroupNormLayer(GroupNormOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => p.Name == "weight" ? ones(p.Shape) : zeros(p.Shape));
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) =>
        F.group_norm(inputs[0], _op.Groups, _op.Affine ? get_parameter("weight") : null, _op.Affine ? get_parameter("bias") : null, _op.Eps);
}
