using TransferSharp.Text.Classification;
using TransferSharp.Text.FastText;
using TransferSharp.Weights;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>A classifier for `text predict` / `text evaluate`: ours (.safetensors) or a fastText model (.bin/.ftz).</summary>
internal sealed class TextModelFile : IDisposable
{
    private TextModelFile(TextClassifier? ours, FastTextModel? fastText)
    {
        Ours = ours;
        FastText = fastText;
    }

    public TextClassifier? Ours { get; }
    public FastTextModel? FastText { get; }

    public static TextModelFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        var head = new byte[16];
        using (var fs = File.OpenRead(path)) fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (TransferSharp.Text.FastText.FastTextReader.HasMagic(head))
        {
            var model = FastTextModel.Load(path);
            if (!model.IsSupervised)
            {
                model.Dispose();
                throw new InvalidFileException(path, "an unsupervised fastText model (word vectors) has no labels; use `transfer vectors` with it");
            }
            return new TextModelFile(null, model);
        }
        if (SafeTensors.LooksLikeSafeTensors(head, new FileInfo(path).Length)) return new TextModelFile(TextClassifier.Load(path), null);
        throw new InvalidFileException(path, "not a text classifier: expected a .safetensors file saved by `transfer text train` or a fastText classifier (.bin/.ftz)");
    }

    /// <summary>Top-k labels as the model names them (fastText's keep their __label__ prefix, as predict-prob prints them).</summary>
    public IReadOnlyList<IReadOnlyList<(string Label, float Probability)>> Predict(IReadOnlyList<string> texts, int k, float threshold)
    {
        if (Ours is not null)
            return Ours.Predict(texts, k).Select(p => (IReadOnlyList<(string, float)>)p.Where(x => x.Probability >= threshold).ToList()).ToList();
        return texts.Select(t => (IReadOnlyList<(string, float)>)FastText!.Predict(t.Replace('\n', ' '), k, threshold)
            .Select(p => (p.Label, p.Probability)).ToList()).ToList();
    }

    public static string StripPrefix(string label) =>
        label.StartsWith(TextDataset.LabelPrefix, StringComparison.Ordinal) ? label[TextDataset.LabelPrefix.Length..] : label;

    public void Dispose()
    {
        Ours?.Dispose();
        FastText?.Dispose();
    }
}
