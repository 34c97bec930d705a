using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text.Classification;
using TransferSharp.Text.FastText;
using TransferSharp.Weights;

namespace TransferSharp.Cli.Commands.Text;

/// <summary>Options of the commands that open a text classifier (`text predict`, `text evaluate`).</summary>
public class TextModelSettings : EncodingSettings
{
    [CommandOption("-m|--model <MODEL>")]
    [Description("A classifier saved by `transfer text train` (.safetensors, on word vectors or an encoder) or a fastText classifier (.bin/.ftz, answered exactly as `fasttext predict-prob`).")]
    public string Model { get; init; } = "";

    public override ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Model) ? ValidationResult.Error("--model is required") : base.Validate();
}

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

    public static TextModelFile Open(TextModelSettings settings)
    {
        var path = settings.Model;
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        var head = new byte[FastTextReader.HeaderBytes];
        using (var fs = File.OpenRead(path)) fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (FastTextReader.IsFastTextModel(head))
        {
            var model = FastTextModel.Load(path, encodingErrors: settings.EncodingErrorMode);
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
