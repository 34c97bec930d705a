namespace TransferSharp.Vision.Graph;

/// <summary>Element-wise unary math functions (ONNX Sqrt, Erf, Exp, Log, Abs, Neg, Reciprocal).</summary>
public enum UnaryKind
{
    /// <summary>√x</summary>
    Sqrt,
    /// <summary>The error function.</summary>
    Erf,
    /// <summary>eˣ</summary>
    Exp,
    /// <summary>ln x</summary>
    Log,
    /// <summary>|x|</summary>
    Abs,
    /// <summary>−x</summary>
    Neg,
    /// <summary>1 / x</summary>
    Reciprocal,
}

/// <summary>An element-wise unary function (what imported graphs spell out: GroupNorm and GELU written
/// as elementary ONNX ops).</summary>
public sealed record UnaryOp(UnaryKind Function) : Op
{
    /// <inheritdoc />
    public override string Kind => Function.ToString();

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx) => onnx.Out(Function.ToString(), onnx.Inputs);

    /// <summary>The ONNX operators imported as this op: each kind is named as its ONNX operator.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports =
        Enum.GetValues<UnaryKind>().Select(kind => (kind.ToString(), (OnnxImportTranslator)(onnx => ImportOnnx(onnx, kind)))).ToArray();

    private static void ImportOnnx(OnnxImportContext onnx, UnaryKind kind)
    {
        if (onnx.IsConstant(0))
        {
            onnx.Fold(new UnaryOp(kind));
            return;
        }
        onnx.Out(new UnaryOp(kind));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Function switch
    {
        UnaryKind.Sqrt => xs[0].sqrt(),
        UnaryKind.Erf => xs[0].erf(),
        UnaryKind.Exp => xs[0].exp(),
        UnaryKind.Log => xs[0].log(),
        UnaryKind.Abs => xs[0].abs(),
        UnaryKind.Neg => xs[0].neg(),
        _ => xs[0].reciprocal(),
    });
}
