using TransferSharp.Data;
using TransferSharp.Onnx;
using TransferSharp.Text;
using TransferSharp.Text.Classification;
using TransferSharp.Text.FastText;
using TransferSharp.Text.Transformers.Tokenization;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Weights;

namespace TransferSharp.Fuzz;

/// <summary>A fuzz input broke a promise: a parser threw something other than the typed, named error, or its message
/// does not name the file or carries control bytes.</summary>
public sealed class FuzzFindingException(string message, Exception? inner) : Exception(message, inner);

/// <summary>
/// One fuzz target per parser. Each writes the input to a file of the format's extension and opens it the way the
/// library does; the only acceptable failures are the library's typed file errors naming that file
/// (<see cref="Check"/>). Shared by the fuzzer (fuzz/run.sh) and the regression tests that replay its findings.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Target name → (file extension, what to do with the file).</summary>
    public static IReadOnlyDictionary<string, (string Extension, Action<string> Open)> All { get; } =
        new Dictionary<string, (string, Action<string>)>(StringComparer.Ordinal)
        {
            ["safetensors"] = (".safetensors", path => SafeTensors.Read(path).Dispose()),
            ["model"] = (".safetensors", path => ModelFile.Read(path).Dispose()),
            ["pytorch"] = (".pth", path => Weights.Checkpoint.Read(path).Dispose()),
            ["onnx"] = (".onnx", Onnx),
            ["graphjson"] = (".json", path => GraphJson.Deserialize(File.ReadAllText(path))),
            ["word2vec-binary"] = (".bin", path => Vectors(path, VectorFileFormat.Word2VecBinary)),
            ["word2vec-text"] = (".txt", path => Vectors(path, VectorFileFormat.Word2VecText)),
            ["glove"] = (".txt", path => Vectors(path, VectorFileFormat.GloVe)),
            ["fasttext"] = (".bin", path => FastTextModel.Load(path).Dispose()),
            ["vector-cache"] = (".tswv", path => Vectors(path, VectorFileFormat.Cache)),
            ["image"] = (".png", path => ImageDecoder.Decode(path)),
            ["image-manifest"] = (".csv", path => ImageDataset.Open(path)),
            ["text-data"] = (".tsv", path => TextDataset.Load(path)),
            ["bert-vocab"] = (".txt", Tokenize),
            ["tokenizer-json"] = (".json", Tokenize),
        };

    private static void Onnx(string path)
    {
        var model = OnnxImporter.Import(path);
        _ = model.Preprocessing;
        _ = model.Labels;
        model.CreateModule().Dispose();
    }

    /// <summary>Loads a BERT tokenizer file and encodes texts that exercise every branch of the text rules with it.</summary>
    private static void Tokenize(string path)
    {
        var tokenizer = BertTextTokenizer.Load(path);
        tokenizer.EncodeBatch(["Café, naïve 你好 🍕 tab\tend [SEP] x²", ""], ["second text", "[UNK]"]).Dispose();
    }

    private static void Vectors(string path, VectorFileFormat format) =>
        WordVectors.Load(path, new WordVectorsLoadOptions { Format = format }).Dispose();

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/> (written to <paramref name="path"/>); throws
    /// <see cref="FuzzFindingException"/> for anything but a typed error naming the file in printable text.</summary>
    public static void Run(string target, byte[] input, string path)
    {
        File.WriteAllBytes(path, input);
        try
        {
            All[target].Open(path);
        }
        catch (Exception e) when (e is not FuzzFindingException)
        {
            Check(target, e, path);
        }
    }

    /// <summary>The promise: an error a user can act on (typed, naming the file, no raw control bytes).</summary>
    public static void Check(string target, Exception e, string path)
    {
        bool typed = e is InvalidFileException or CheckpointException or OnnxException or DatasetException
            || (target == "graphjson" && e is GraphException);
        if (!typed) throw new FuzzFindingException($"{target}: untyped {e.GetType().Name}: {e.Message}", e);
        if (target != "graphjson" && !e.Message.Contains(path, StringComparison.Ordinal))
            throw new FuzzFindingException($"{target}: the message does not name the file: {e.Message}", e);
        if (e.Message.Any(c => c < 0x20 && c != '\n' || c is >= '\x7f' and <= '\x9f'))
            throw new FuzzFindingException($"{target}: the message carries control bytes: {TransferSharp.IO.Printable.Of(e.Message)}", e);
    }
}
