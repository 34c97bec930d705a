using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Data;

/// <summary>A data set cannot be used as given: no classes, an empty class, missing files, a bad manifest line.
/// The message says which folder, file or line, and what to do (control characters quoted from a file shown escaped).</summary>
public sealed class DatasetException(string message) : TransferSharpException(IO.Printable.Of(message));

/// <summary>
/// Labelled samples and their class names (index → name, in a fixed order). Image data sets hold
/// file paths and decode on demand; <see cref="TensorDataset"/> holds preprocessed tensors in memory.
/// </summary>
public abstract class Dataset
{
    /// <summary>Class names; a sample's label indexes this list.</summary>
    public abstract IReadOnlyList<string> ClassNames { get; }

    /// <summary>Number of samples.</summary>
    public abstract int Count { get; }

    /// <summary>The label (class index) of sample <paramref name="index"/>.</summary>
    public abstract int LabelOf(int index);

    /// <summary>Where sample <paramref name="index"/> comes from (a file path, or "#N" for in-memory samples).</summary>
    public abstract string SourceOf(int index);

    /// <summary>Where the data came from (a folder, a manifest, "memory"), for messages.</summary>
    public abstract string Origin { get; }

    /// <summary>Writes the model input of one sample (C×H×W floats) into <paramref name="destination"/>.
    /// Image files are decoded and transformed here; throws <see cref="ImageDecodeException"/> for a bad file.</summary>
    internal abstract void Fill(int index, SampleTransform transform, Random random, Span<float> destination);

    /// <summary>Samples per class, in class order.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassNames.Count];
        for (int i = 0; i < Count; i++) counts[LabelOf(i)]++;
        return counts;
    }

    /// <summary>A view of some samples (same class names).</summary>
    public Dataset Subset(IReadOnlyList<int> indices) => new SubsetDataset(this, indices.ToArray());

    /// <summary>
    /// Splits into training and validation parts, stratified: each class gives round(fraction × its count)
    /// samples to validation (at least one when it has two or more), chosen with a seeded shuffle, so
    /// the same seed always gives the same split.
    /// </summary>
    public (Dataset Train, Dataset Validation) StratifiedSplit(double validationFraction, int seed = 0)
    {
        if (validationFraction is <= 0 or >= 1)
            throw new InvalidOptionException("ValidationSplit", $"validation fraction {validationFraction} must be between 0 and 1 (exclusive)");
        var byClass = Enumerable.Range(0, ClassNames.Count).Select(_ => new List<int>()).ToArray();
        for (int i = 0; i < Count; i++) byClass[LabelOf(i)].Add(i);
        var rng = new Random(seed);
        var train = new List<int>();
        var val = new List<int>();
        foreach (var members in byClass)
        {
            var shuffled = members.ToArray();
            rng.Shuffle(shuffled);
            int take = (int)Math.Round(validationFraction * shuffled.Length, MidpointRounding.AwayFromZero);
            if (take == 0 && shuffled.Length >= 2) take = 1;
            if (take == shuffled.Length && shuffled.Length > 0) take = shuffled.Length - 1;
            val.AddRange(shuffled.Take(take));
            train.AddRange(shuffled.Skip(take));
        }
        train.Sort();
        val.Sort();
        return (Subset(train), Subset(val));
    }

    /// <summary>
    /// The same samples with labels re-indexed into <paramref name="classNames"/> (for a validation or
    /// test set whose folders must line up with a trained model's classes). A class of this set that the
    /// list lacks is an error naming it; classes of the list missing here are fine.
    /// </summary>
    public Dataset AlignTo(IReadOnlyList<string> classNames)
    {
        if (ClassNames.SequenceEqual(classNames, StringComparer.Ordinal)) return this;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < classNames.Count; i++) index[classNames[i]] = i;
        var counts = ClassCounts();
        var unknown = ClassNames.Where((c, i) => !index.ContainsKey(c) && counts[i] > 0).ToArray();
        if (unknown.Length > 0)
            throw new DatasetException($"{Origin}: class{(unknown.Length > 1 ? "es" : "")} {string.Join(", ", unknown.Select(u => $"'{u}'"))} not among the model's classes ({string.Join(", ", classNames)})");
        var map = ClassNames.Select(c => index.TryGetValue(c, out var j) ? j : -1).ToArray();
        return new RelabelledDataset(this, classNames.ToArray(), map);
    }

    private sealed class SubsetDataset(Dataset inner, int[] indices) : Dataset
    {
        public override IReadOnlyList<string> ClassNames => inner.ClassNames;
        public override int Count => indices.Length;
        public override int LabelOf(int index) => inner.LabelOf(indices[index]);
        public override string SourceOf(int index) => inner.SourceOf(indices[index]);
        public override string Origin => inner.Origin;
        internal override void Fill(int index, SampleTransform transform, Random random, Span<float> destination) =>
            inner.Fill(indices[index], transform, random, destination);
    }

    private sealed class RelabelledDataset(Dataset inner, string[] classNames, int[] map) : Dataset
    {
        public override IReadOnlyList<string> ClassNames => classNames;
        public override int Count => inner.Count;
        public override int LabelOf(int index) => map[inner.LabelOf(index)];
        public override string SourceOf(int index) => inner.SourceOf(index);
        public override string Origin => inner.Origin;
        internal override void Fill(int index, SampleTransform transform, Random random, Span<float> destination) =>
            inner.Fill(index, transform, random, destination);
    }
}
