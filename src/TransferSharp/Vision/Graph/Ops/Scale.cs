using System.Globalization;

namespace TransferSharp.Vision.Graph;

/// <summary>Multiplies by a constant (Inception-ResNet's residual scale), optionally adding one.</summary>
public sealed record ScaleOp(double Scale, double Shift = 0) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => inputs[0];

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs => Shift == 0 ? xs[0] * Scale : xs[0] * Scale + Shift);

    /// <inheritdoc />
    public override string Describe() => $"×{Scale.ToString(CultureInfo.InvariantCulture)}" + (Shift != 0 ? $" +{Shift.ToString(CultureInfo.InvariantCulture)}" : "");
}
