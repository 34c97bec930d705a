using System.Globalization;

namespace TransferSharp.Vision.Graph;

/// <summary>Multiplies by a constant (Inception-ResNet's residual scale), optionally adding one.</summary>
public sealed record ScaleOp(double Scale, double Shift = 0) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        string y = onnx.Inputs[0];
        bool shift = Shift != 0;
        if (Scale != 1 || !shift) y = onnx.Emit("Mul", [y, onnx.Scalar(name + ".scale", Scale)], shift ? onnx.Fresh(name + "_mul") : onnx.Fresh(name));
        onnx.SetOutput(shift ? onnx.Emit("Add", [y, onnx.Scalar(name + ".shift", Shift)], onnx.Fresh(name)) : y);
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Shift == 0 ? xs[0] * Scale : xs[0] * Scale + Shift);

    /// <inheritdoc />
    public override string Describe() => $"×{Scale.ToString(CultureInfo.InvariantCulture)}" + (Shift != 0 ? $" +{Shift.ToString(CultureInfo.InvariantCulture)}" : "");
}
