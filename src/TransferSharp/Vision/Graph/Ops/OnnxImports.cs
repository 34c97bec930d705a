namespace TransferSharp.Vision.Graph;

/// <summary>
/// The ONNX import table: each ONNX operator type the importer translates into IR ops, mapped to the translator
/// declared beside the op it becomes. A plain list of the op files' own entries — a new op adds its line here.
/// (The importer's own machinery — Constant, Shape, Gather, Cast, Split, Identity and constant folding — is not here.)
/// </summary>
internal static class OnnxImports
{
    /// <summary>ONNX operator type → translator.</summary>
    public static IReadOnlyDictionary<string, OnnxImportTranslator> Translators { get; } = new[]
    {
        Conv2dOp.OnnxImports, ConvTranspose2dOp.OnnxImports, BatchNormOp.OnnxImports, ActivationOp.OnnxImports,
        SoftmaxOp.OnnxImports, Pool2dOp.OnnxImports, GlobalPoolOp.OnnxImports, BinaryOp.OnnxImports, ConcatOp.OnnxImports,
        SliceOp.OnnxImports, FlattenOp.OnnxImports, ReshapeOp.OnnxImports, TransposeOp.OnnxImports, SqueezeOp.OnnxImports,
        LinearOp.OnnxImports, MatMulOp.OnnxImports, PadOp.OnnxImports, DropoutOp.OnnxImports, ReduceOp.OnnxImports,
        UnaryOp.OnnxImports, ExtremumOp.OnnxImports, LayerNormOp.OnnxImports,
    }.SelectMany(entries => entries).ToDictionary(e => e.OpType, e => e.Translate, StringComparer.Ordinal);
}
