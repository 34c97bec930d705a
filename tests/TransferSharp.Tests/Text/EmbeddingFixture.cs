using System.Text.Json;
using TransferSharp.Tests.Support;
using TransferSharp.Text;
using TransferSharp.Text.FastText;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// The embedding reference set (../shared/reference/embeddings, or $TRANSFERSHARP_EMBEDDINGS_DIR for another
/// directory of the same shape): expected.json and the model files, each opened once for all parity tests.
/// </summary>
public sealed class EmbeddingFixture : IDisposable
{
    private readonly Lazy<FastTextModel> _ft, _sup, _ftz;
    private readonly Lazy<WordVectors> _ftVectors;
    private readonly Dictionary<string, Lazy<WordVectors>> _word2vec;

    public EmbeddingFixture()
    {
        Directory = Paths.EmbeddingFixtures;
        Available = System.IO.File.Exists(Path.Combine(Directory, "expected.json"));
        Expected = Available ? JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(Directory, "expected.json"))).RootElement : default;
        _ft = new(() => FastTextModel.Load(File("ft.bin")));
        _sup = new(() => FastTextModel.Load(File("sup.bin")));
        _ftz = new(() => FastTextModel.Load(File("sup.ftz")));
        _ftVectors = new(() => WordVectors.Load(File("ft.bin")));
        _word2vec = new[] { "w2v.bin", "w2v.txt", "glove.txt" }.ToDictionary(n => n, n => new Lazy<WordVectors>(() => WordVectors.Load(File(n))));
    }

    public string Directory { get; }
    public bool Available { get; }
    public JsonElement Expected { get; }

    public string File(string name) => Path.Combine(Directory, name);

    public FastTextModel FastText => _ft.Value;
    public FastTextModel Supervised => _sup.Value;
    public FastTextModel Quantized => _ftz.Value;
    public WordVectors FastTextVectors => _ftVectors.Value;

    /// <summary>The gensim vectors as each of the three files gives them.</summary>
    public IEnumerable<(string Name, WordVectors Vectors)> Word2VecFiles => _word2vec.Select(p => (p.Key, p.Value.Value));

    public JsonElement Section(string name)
    {
        Xunit.Assert.True(Available, $"no embedding fixtures at {Directory} (set TRANSFERSHARP_EMBEDDINGS_DIR)");
        return Expected.GetProperty(name);
    }

    public static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();

    public void Dispose()
    {
        foreach (var l in new[] { _ft, _sup, _ftz }) if (l.IsValueCreated) l.Value.Dispose();
        if (_ftVectors.IsValueCreated) _ftVectors.Value.Dispose();
        foreach (var l in _word2vec.Values) if (l.IsValueCreated) l.Value.Dispose();
    }
}
