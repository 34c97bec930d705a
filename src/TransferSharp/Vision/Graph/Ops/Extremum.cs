namespace TransferSharp.Vision.Graph;

/// <summary>Element-wise maximum or minimum of its inputs with broadcasting (ONNX Max / Min).</summary>
public sealed record ExtremumOp(bool Maximum) : Op
{
    /// <inheritdoc />
    public override string Kind => Maximum ? "Max" : "Min";

    /// <inheritdoc />
    public override int Arity => -1;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => new BinaryOp(BinaryKind.Add).InferShape(inputs);

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out(Kind, onnx.Inputs);

    /// <summary>The ONNX operators imported as this op (one operand is that operand).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
        [("Max", onnx => ImportOnnx(onnx, true)), ("Min", onnx => ImportOnnx(onnx, false))];

    private static void ImportOnnx(OnnxImportContext onnx, bool max)
    {
        var xs = Enumerable.Range(0, onnx.InputCount).Where(onnx.Has).ToArray();
        if (xs.Length == 1) { onnx.Alias(); return; }
        onnx.Emit(onnx.Add(new ExtremumOp(max), onnx.NodeName(), xs.Select(onnx.Value).ToArray()));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        var y = xs[0].alias();
        for (int i = 1; i < xs.Count; i++)
        {
            var next = Maximum ? y.maximum(xs[i]) : y.minimum(xs[i]);
            y.Dispose();
            y = next;
        }
        return y;
    });
}
