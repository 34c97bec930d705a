using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Pooling over all spatial positions; keeps [N, C, 1, 1] or flattens to [N, C].</summary>
public sealed record GlobalPoolOp(PoolKind Pool, bool KeepDims = true) : Op
{
    /// <inheritdoc />
    public override string Kind => Pool == PoolKind.Max ? "GlobalMaxPool" : "GlobalAvgPool";

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (x.Length < 3) throw Bad($"{Kind} expects a spatial input");
        if (!KeepDims) return [x[0], x[1]];
        var o = (long[])x.Clone();
        for (int i = 2; i < o.Length; i++) o[i] = 1;
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var op = Pool == PoolKind.Avg ? "GlobalAveragePool" : "GlobalMaxPool";
        if (KeepDims) onnx.Out(op, [onnx.Inputs[0]]);
        else onnx.Out("Flatten", [onnx.Emit(op, [onnx.Inputs[0]], onnx.Fresh(onnx.Node.Name + "_keepdims"))], Attr("axis", 1));
    }

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
    [
        ("GlobalAveragePool", onnx => onnx.Out(new GlobalPoolOp(PoolKind.Avg, true))),
        ("GlobalMaxPool", onnx => onnx.Out(new GlobalPoolOp(PoolKind.Max, true))),
    ];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => GlobalPool(xs[0], Pool, KeepDims));

    internal static TorchSharp.torch.Tensor GlobalPool(TorchSharp.torch.Tensor x, PoolKind pool, bool keepDims)
    {
        var dims = Enumerable.Range(2, (int)x.dim() - 2).Select(i => (long)i).ToArray();
        if (pool == PoolKind.Avg) return x.mean(dims, keepdim: keepDims);
        return x.amax(dims, keepdim: keepDims);
    }
}
