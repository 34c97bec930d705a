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

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => TorchSharp.torch.nn.functional.pad(xs[0],
        [Left, Right, Top, Bottom],
        Mode switch { "reflect" => TorchSharp.PaddingModes.Reflect, "edge" => TorchSharp.PaddingModes.Replicate, _ => TorchSharp.PaddingModes.Constant },
        Value));

    /// <inheritdoc />
    public override string Describe() => $"(t{Top},l{Left},b{Bottom},r{Right})" + (Mode != "constant" ? " " + Mode : "");
}
