using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Permutes dimensions.</summary>
public sealed record TransposeOp(int[] Perm) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Perm.Select(p => inputs[0][p]).ToArray();

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out("Transpose", onnx.Inputs, Attr("perm", Perm.Select(p => (long)p)));

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].permute(Perm.Select(p => (long)p).ToArray()));

    /// <inheritdoc />
    public bool Equals(TransposeOp? other) => other is not null && Perm.SequenceEqual(other.Perm);

    /// <inheritdoc />
    public override int GetHashCode() => Perm.Length;
}
