using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Data;

/// <summary>
/// Samples already in memory as model inputs: a float tensor [N, C, H, W] (preprocessed: normalised,
/// at the model's size) and labels. Augmentation applies only the horizontal flip; crops and colour
/// jitter need image files.
/// </summary>
public sealed class TensorDataset : Dataset
{
    private readonly float[] _values;
    private readonly long[] _shape;
    private readonly int[] _labels;
    private readonly string[] _classNames;

    /// <summary>Copies the images and labels (the tensor may be disposed afterwards).</summary>
    public TensorDataset(Tensor images, IReadOnlyList<int> labels, IReadOnlyList<string> classNames)
    {
        if (images.dim() != 4) throw new ArgumentException($"images must be [N, C, H, W], got [{string.Join(",", images.shape)}]");
        if (images.shape[0] != labels.Count) throw new ArgumentException($"{images.shape[0]} images but {labels.Count} labels");
        if (labels.Any(l => l < 0 || l >= classNames.Count)) throw new ArgumentException($"labels must lie in 0..{classNames.Count - 1}");
        using (var f = images.to(ScalarType.Float32).cpu().contiguous()) _values = f.data<float>().ToArray();
        _shape = images.shape;
        _labels = labels.ToArray();
        _classNames = classNames.ToArray();
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <inheritdoc />
    public override int Count => _labels.Length;

    /// <inheritdoc />
    public override int LabelOf(int index) => _labels[index];

    /// <inheritdoc />
    public override string SourceOf(int index) => "#" + index;

    /// <inheritdoc />
    public override string Origin => "memory";

    internal override void Fill(int index, SampleTransform transform, Random random, Span<float> destination)
    {
        int c = (int)_shape[1], h = (int)_shape[2], w = (int)_shape[3];
        if (transform.SampleSize != c * h * w)
            throw new ArgumentException($"in-memory samples are [{c},{h},{w}] but the model's preprocessing wants [{string.Join(",", transform.SampleShape)}]");
        var src = _values.AsSpan(index * c * h * w, c * h * w);
        bool flip = transform.Augmentation is { HorizontalFlip: true } && random.NextDouble() < 0.5;
        if (!flip) { src.CopyTo(destination); return; }
        for (int p = 0; p < c * h; p++)
            for (int x = 0; x < w; x++) destination[p * w + x] = src[p * w + w - 1 - x];
    }
}
