using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>Pads the last two dimensions (top, left, bottom, right) with a constant or by reflection.</summary>
public sealed record PadOp(int Top, int Left, int Bottom, int Right, double Value = 0, string Mode = "constant") : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var o = (long[])inputs[0].Clone();
        if (o.Length < 2) throw Bad("Pad expects at least a 2-D input");
        o[^2] += Top + Bottom;
        o[^1] += Left + Right;
        if (o[^2] <= 0 || o[^1] <= 0) throw Bad("Pad: negative padding removes the whole input");
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        int rank = onnx.InputShapes[0].Length;
        var pads = new long[2 * rank];
        pads[rank - 2] = Top;
        pads[rank - 1] = Left;
        pads[2 * rank - 2] = Bottom;
        pads[2 * rank - 1] = Right;
        onnx.Out("Pad", [onnx.Inputs[0], onnx.Ints(name + ".pads", pads), onnx.Scalar(name + ".value", Value)], Attr("mode", Mode));
    }

    /// <summary>The ONNX operators imported as this op (padding of the last two dimensions).</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Pad", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var x = onnx.Value(0);
        int rank = x.Shape.Length;
        long[] pads;
        string mode = onnx.String("mode") ?? "constant";
        double value;
        if (onnx.Opset < 11)
        {
            pads = onnx.Ints("pads") ?? throw onnx.Malformed("pads missing");
            value = onnx.Float("value", 0f);
        }
        else
        {
            pads = onnx.Constant(1, "pads").AsInts();
            value = onnx.OptionalConstant(2, "constant_value") is { } cv ? cv[0] : 0;
            if (onnx.Opset >= 18 && onnx.Has(3))
            {
                var axes = onnx.Constant(3, "axes").AsInts().Select(a => OnnxImportContext.Norm(a, rank)).ToArray();
                var full = new long[2 * rank];
                for (int k = 0; k < axes.Length; k++)
                {
                    full[axes[k]] = pads[k];
                    full[axes[k] + rank] = pads[k + axes.Length];
                }
                pads = full;
            }
        }
        if (pads.Length != 2 * rank) throw onnx.Malformed($"{pads.Length} pads for a rank-{rank} input");
        for (int d = 0; d < rank - 2; d++)
            if (pads[d] != 0 || pads[d + rank] != 0) throw onnx.Unsupported($"padding of dimension {d}; only the last two are supported");
        if (mode is not ("constant" or "reflect" or "edge")) throw onnx.Unsupported($"pad mode '{mode}'");
        var op = new PadOp((int)pads[rank - 2], (int)pads[rank - 1], (int)pads[2 * rank - 2], (int)pads[2 * rank - 1], value, mode);
        onnx.Emit(onnx.Add(op, onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.pad(xs[0],
        [Left, Right, Top, Bottom],
        Mode switch { "reflect" => TorchSharp.PaddingModes.Reflect, "edge" => TorchSharp.PaddingModes.Replicate, _ => TorchSharp.PaddingModes.Constant },
        Value));

    /// <inheritdoc />
    public override string Describe() => $"(t{Top},l{Left},b{Bottom},r{Right})" + (Mode != "constant" ? " " + Mode : "");
}
