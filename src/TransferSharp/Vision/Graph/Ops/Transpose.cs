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

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Transpose", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        var perm = onnx.Ints("perm") ?? Enumerable.Range(0, x.Shape.Length).Reverse().Select(i => (long)i).ToArray();
        onnx.Emit(onnx.Add(new TransposeOp(perm.Select(p => (int)p).ToArray()), onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => xs[0].permute(Perm.Select(p => (long)p).ToArray()));

    /// <inheritdoc />
    public bool Equals(TransposeOp? other) => other is not null && Perm.SequenceEqual(other.Perm);

    /// <inheritdoc />
    public override int GetHashCode() => Perm.Length;
}
