using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using TransferSharp.IO;

namespace TransferSharp.Text.Transformers.Tokenization;

/// <summary>
/// The WordPiece tokenizer of BERT-family encoders (BERT, MiniLM, BGE, E5): Hugging Face's normalization and
/// pre-tokenization rules in front of Microsoft.ML.Tokenizers' WordPiece. Loads <c>vocab.txt</c> or a Hugging Face
/// <c>tokenizer.json</c>, with <c>tokenizer_config.json</c> (and sentence-transformers' <c>sentence_bert_config.json</c>)
/// when present, and encodes batches into the padded tensors an encoder takes. An empty text encodes as
/// <c>[CLS] [SEP]</c>, as Hugging Face's tokenizer does.
/// </summary>
public sealed class BertTextTokenizer
{
    private readonly BertTokenizer _wordPiece;
    private readonly Dictionary<string, int> _ids;

    private BertTextTokenizer(IReadOnlyList<string> tokens, Dictionary<string, int> ids, BertTokenizerSettings settings, string source)
    {
        Tokens = tokens;
        Settings = settings;
        Source = source;
        _ids = ids;
        VocabularySize = tokens.Count;
        int Special(string token) => ids[token];
        ClassificationId = Special(settings.ClassificationToken);
        SeparatorId = Special(settings.SeparatorToken);
        PaddingId = Special(settings.PaddingToken);
        UnknownId = Special(settings.UnknownToken);

        // Special tokens written in a text stay whole, also after lowercasing (as Hugging Face's added tokens do).
        var special = new Dictionary<string, int>();
        foreach (var token in settings.SpecialTokens)
        {
            special[token] = ids[token];
            if (settings.Lowercase) special[token.ToLowerInvariant()] = ids[token];
        }
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = settings.Lowercase,
            Normalizer = new BertNormalization(settings.Lowercase, settings.StripsAccents, settings.HandleChineseCharacters),
            PreTokenizer = BertPreTokenization.Create(special),
            UnknownToken = settings.UnknownToken,
            ContinuingSubwordPrefix = settings.ContinuingSubwordPrefix,
            MaxInputCharsPerWord = settings.MaxInputCharsPerWord,
            ClassificationToken = settings.ClassificationToken,
            SeparatorToken = settings.SeparatorToken,
            PaddingToken = settings.PaddingToken,
            MaskingToken = settings.MaskToken,
        };
        // The library reads the vocabulary as vocab.txt lines; the tokens were validated before (no line breaks in one).
        using var vocab = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', tokens)));
        try
        {
            _wordPiece = BertTokenizer.Create(vocab, options);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFileException(source, e.Message, inner: e);
        }
    }

    /// <summary>The settings in force.</summary>
    public BertTokenizerSettings Settings { get; }

    /// <summary>The vocabulary, the index of a token its id (what a saved classifier stores to rebuild the tokenizer).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>The same vocabulary with other settings, e.g. a shorter <see cref="BertTokenizerSettings.MaxLength"/>.</summary>
    public BertTextTokenizer WithSettings(BertTokenizerSettings settings) => Create([.. Tokens], settings, Source);

    /// <summary>A tokenizer from its token list (the index is the id) and settings; <paramref name="source"/> names it in
    /// errors.</summary>
    public static BertTextTokenizer FromTokens(IReadOnlyList<string> tokens, BertTokenizerSettings settings, string source)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Any(t => t is null || t.Contains('\n')))
            throw new TokenizerFileException(source, "a token is null or holds a line break: not a WordPiece vocabulary");
        return Create([.. tokens], settings, source);
    }

    /// <summary>The file or folder the vocabulary came from.</summary>
    public string Source { get; }

    /// <summary>Tokens in the vocabulary: one more than the highest id.</summary>
    public int VocabularySize { get; }

    /// <summary>The id of [CLS].</summary>
    public int ClassificationId { get; }

    /// <summary>The id of [SEP].</summary>
    public int SeparatorId { get; }

    /// <summary>The id of [PAD].</summary>
    public int PaddingId { get; }

    /// <summary>The id of [UNK].</summary>
    public int UnknownId { get; }

    /// <summary>
    /// Loads a tokenizer from a model folder (its <c>tokenizer.json</c>, else its <c>vocab.txt</c>), or from one of
    /// those files. <c>tokenizer_config.json</c> beside it gives <c>model_max_length</c> (and, without a tokenizer.json,
    /// <c>do_lower_case</c>, <c>strip_accents</c>, <c>tokenize_chinese_chars</c>); sentence-transformers'
    /// <c>sentence_bert_config.json</c> lowers the maximum to its <c>max_seq_length</c>. Unusable files raise
    /// <see cref="TokenizerFileException"/> or <see cref="InvalidUtf8Exception"/> naming the file.
    /// </summary>
    public static BertTextTokenizer Load(string path)
    {
        string folder;
        string? tokenizerJson = null, vocabTxt = null;
        if (Directory.Exists(path))
        {
            folder = path;
            if (File.Exists(Path.Combine(path, "tokenizer.json"))) tokenizerJson = Path.Combine(path, "tokenizer.json");
            else if (File.Exists(Path.Combine(path, "vocab.txt"))) vocabTxt = Path.Combine(path, "vocab.txt");
            else throw new TokenizerFileException(path, "the folder has neither tokenizer.json nor vocab.txt");
        }
        else if (File.Exists(path))
        {
            folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) tokenizerJson = path;
            else vocabTxt = path;
        }
        else throw new FileNotFoundException($"{path}: no such file or folder", path);

        var settings = new BertTokenizerSettings();
        var config = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(config)) settings = ApplyTokenizerConfig(config, settings, normalizerToo: tokenizerJson is null);
        List<string> tokens;
        string source;
        if (tokenizerJson is not null)
        {
            (tokens, settings) = ReadTokenizerJson(tokenizerJson, settings, File.Exists(config));
            source = tokenizerJson;
        }
        else
        {
            tokens = ReadVocabularyText(vocabTxt!, StrictUtf8.ReadFile(vocabTxt!));
            source = vocabTxt!;
        }
        var sentenceConfig = Path.Combine(folder, "sentence_bert_config.json");
        if (File.Exists(sentenceConfig))
        {
            using var doc = ReadJson(sentenceConfig);
            if (Int(doc.RootElement, "max_seq_length") is { } maxSeq && maxSeq >= 3 && maxSeq < settings.MaxLength)
                settings = settings with { MaxLength = maxSeq };
        }
        return Create(tokens, settings, source);
    }

    /// <summary>A tokenizer from a vocab.txt stream (one token a line, the line number is the id), such as a vocabulary
    /// embedded in a package. <paramref name="source"/> names it in errors.</summary>
    public static BertTextTokenizer FromVocabulary(Stream vocabulary, string source, BertTokenizerSettings? settings = null)
    {
        using var buffer = new MemoryStream();
        vocabulary.CopyTo(buffer);
        return Create(ReadVocabularyText(source, StrictUtf8.Decode(source, buffer.GetBuffer().AsSpan(0, (int)buffer.Length))),
            settings ?? new BertTokenizerSettings(), source);
    }

    /// <summary>The id of a vocabulary token, or null.</summary>
    public int? TokenId(string token) => _ids.TryGetValue(token, out int id) ? id : null;

    /// <summary>Encodes one text, or a pair (token type 1 for the second), truncated to
    /// <see cref="BertTokenizerSettings.MaxLength"/>: a single text keeps its first tokens; a pair loses tokens from
    /// whichever text is longer at each step (Hugging Face's <c>longest_first</c>).</summary>
    public BertEncoding Encode(string text, string? pair = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var a = _wordPiece.EncodeToIds(text, addSpecialTokens: false);
        var b = pair is null ? null : _wordPiece.EncodeToIds(pair, addSpecialTokens: false);
        int specials = b is null ? 2 : 3;
        int untruncated = a.Count + (b?.Count ?? 0) + specials;
        int keepA = a.Count, keepB = b?.Count ?? 0;
        int budget = Settings.MaxLength - specials;
        while (keepA + keepB > budget)
        {
            if (keepA > keepB) keepA--;
            else keepB--;
        }
        int length = keepA + keepB + specials;
        var ids = new int[length];
        var types = new int[length];
        int k = 0;
        ids[k++] = ClassificationId;
        for (int i = 0; i < keepA; i++) ids[k++] = a[i];
        ids[k++] = SeparatorId;
        if (b is not null)
        {
            int second = k;
            for (int i = 0; i < keepB; i++) ids[k++] = b[i];
            ids[k++] = SeparatorId;
            types.AsSpan(second).Fill(1);
        }
        return new BertEncoding(ids, types, untruncated);
    }

    /// <summary>Encodes a batch into padded int64 tensors <c>[N, T]</c>, T the longest encoded text (at most
    /// <see cref="BertTokenizerSettings.MaxLength"/>). <paramref name="pairs"/>, when given, pairs each text with a second
    /// one (token type 1). Truncated texts are listed in <see cref="TokenizedBatch.TruncatedIndices"/>.</summary>
    public TokenizedBatch EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) throw new InvalidOptionException("texts", "there are no texts to encode");
        if (pairs is not null && pairs.Count != texts.Count)
            throw new InvalidOptionException("pairs", $"{texts.Count} texts but {pairs.Count} second texts: a pair needs one of each");
        var encodings = new BertEncoding[texts.Count];
        for (int i = 0; i < texts.Count; i++) encodings[i] = Encode(texts[i], pairs?[i]);
        return new TokenizedBatch(encodings, PaddingId, Settings.MaxLength);
    }

    /// <summary>Checks that a token-embedding matrix of <paramref name="rows"/> rows fits this vocabulary, raising
    /// <see cref="VocabularySizeMismatchException"/> naming both numbers when it does not. A matrix larger than the
    /// vocabulary is accepted only with <paramref name="allowExtraRows"/> (some checkpoints pad it to a multiple of 8);
    /// by default the sizes must be equal, which also catches the tokenizer of a larger model's sibling.</summary>
    public void CheckEmbeddingRows(long rows, string embeddingName = "embeddings.word_embeddings.weight", bool allowExtraRows = false)
    {
        if (rows == VocabularySize || allowExtraRows && rows > VocabularySize) return;
        throw new VocabularySizeMismatchException(Source, VocabularySize, embeddingName, rows);
    }

    private static BertTextTokenizer Create(List<string> tokens, BertTokenizerSettings settings, string source)
    {
        if (settings.MaxLength < 3) throw new InvalidOptionException(nameof(BertTokenizerSettings.MaxLength), $"MaxLength is {settings.MaxLength}: a BERT sequence needs at least 3 tokens ([CLS], one token, [SEP])");
        if (settings.MaxInputCharsPerWord < 1) throw new InvalidOptionException(nameof(BertTokenizerSettings.MaxInputCharsPerWord), "MaxInputCharsPerWord must be at least 1");
        var ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
            if (tokens[i].Length > 0) ids[tokens[i]] = i;
        var missing = settings.SpecialTokens.Where(t => !ids.ContainsKey(t)).ToList();
        if (missing.Count > 0)
            throw new TokenizerFileException(source, $"the vocabulary ({tokens.Count} tokens) lacks the special token(s) {string.Join(", ", missing)}: it is not a BERT WordPiece vocabulary");
        return new BertTextTokenizer(tokens, ids, settings, source);
    }

    /// <summary>vocab.txt: one token a line, the 0-based line number its id (Hugging Face's <c>load_vocab</c>).</summary>
    private static List<string> ReadVocabularyText(string path, string text)
    {
        var lines = text.Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        var tokens = new List<string>(count);
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            var token = lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
            if (token.Any(c => c < ' ' && c != '\t'))
                throw new TokenizerFileException(path, "control characters in a token: this is a binary file, not a vocab.txt (one token a line, UTF-8)", i + 1);
            if (token.Length > 0 && !firstLine.TryAdd(token, i + 1))
                throw new TokenizerFileException(path, $"the token '{token}' is listed twice (lines {firstLine[token]} and {i + 1}): ids would be ambiguous", i + 1);
            tokens.Add(token);
        }
        if (firstLine.Count == 0) throw new TokenizerFileException(path, "the vocabulary is empty (a vocab.txt lists one token a line)");
        return tokens;
    }

    private static JsonDocument ReadJson(string path)
    {
        try
        {
            return JsonDocument.Parse(StrictUtf8.ReadFile(path), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, $"malformed JSON: {e.Message}", e.LineNumber + 1, e);
        }
    }

    private static BertTokenizerSettings ApplyTokenizerConfig(string path, BertTokenizerSettings settings, bool normalizerToo)
    {
        using var doc = ReadJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFileException(path, "expected a JSON object");
        // model_max_length is 1e30 when a checkpoint does not say (transformers' VERY_LARGE_INTEGER): keep the default then.
        if (root.TryGetProperty("model_max_length", out var max) && max.ValueKind == JsonValueKind.Number
            && max.TryGetDouble(out double m) && m >= 3 && m <= 1 << 20)
            settings = settings with { MaxLength = (int)m };
        if (!normalizerToo) return settings;
        if (Bool(root, "do_lower_case", path) is { } lower) settings = settings with { Lowercase = lower };
        if (root.TryGetProperty("strip_accents", out var strip)) settings = settings with { StripAccents = NullableBool(strip, "strip_accents", path) };
        if (Bool(root, "tokenize_chinese_chars", path) is { } cjk) settings = settings with { HandleChineseCharacters = cjk };
        return settings;
    }

    private static (List<string>, BertTokenizerSettings) ReadTokenizerJson(string path, BertTokenizerSettings settings, bool haveConfig)
    {
        using var doc = ReadJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerFileException(path, "no \"model\" object: not a Hugging Face tokenizer.json");
        var type = Str(model, "type");
        if (type != "WordPiece")
            throw new TokenizerFileException(path, $"the model is {type ?? "(no type)"}, not WordPiece: only BERT-family WordPiece tokenizers are supported");
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new TokenizerFileException(path, "model.vocab is missing or not an object of token: id");
        var byId = new Dictionary<int, string>();
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new TokenizerFileException(path, $"model.vocab: the id of '{entry.Name}' is {entry.Value.GetRawText()}, not a non-negative integer");
            if (entry.Name.Contains('\n') || entry.Name.Contains('\r'))
                throw new TokenizerFileException(path, $"model.vocab: token id {id} contains a line break");
            if (!byId.TryAdd(id, entry.Name))
                throw new TokenizerFileException(path, $"model.vocab: id {id} is given to both '{byId[id]}' and '{entry.Name}'");
        }
        if (byId.Count == 0) throw new TokenizerFileException(path, "model.vocab is empty");
        var tokens = new List<string>(byId.Count);
        for (int i = 0; i < byId.Count; i++)
        {
            if (!byId.TryGetValue(i, out var token))
                throw new TokenizerFileException(path, $"model.vocab: {byId.Count} tokens but no token has id {i} (ids must run from 0 without gaps)");
            tokens.Add(token);
        }
        if (Str(model, "unk_token") is { } unk) settings = settings with { UnknownToken = unk };
        if (Str(model, "continuing_subword_prefix") is { Length: > 0 } prefix) settings = settings with { ContinuingSubwordPrefix = prefix };
        if (Int(model, "max_input_chars_per_word") is { } mc)
        {
            if (mc < 1) throw new TokenizerFileException(path, $"model.max_input_chars_per_word is {mc}: it must be at least 1");
            settings = settings with { MaxInputCharsPerWord = mc };
        }

        if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind != JsonValueKind.Null)
        {
            var kind = Str(normalizer, "type");
            if (kind != "BertNormalizer")
                throw new TokenizerFileException(path, $"the normalizer is {kind ?? "(no type)"}, not BertNormalizer: this tokenizer's text rules are not BERT's");
            if (Bool(normalizer, "clean_text", path) == false)
                throw new TokenizerFileException(path, "normalizer.clean_text is false, which is not supported (every BERT checkpoint cleans text)");
            if (Bool(normalizer, "lowercase", path) is { } lower) settings = settings with { Lowercase = lower };
            if (normalizer.TryGetProperty("strip_accents", out var strip)) settings = settings with { StripAccents = NullableBool(strip, "normalizer.strip_accents", path) };
            if (Bool(normalizer, "handle_chinese_chars", path) is { } cjk) settings = settings with { HandleChineseCharacters = cjk };
        }
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind != JsonValueKind.Null && Str(pre, "type") != "BertPreTokenizer")
            throw new TokenizerFileException(path, $"the pre-tokenizer is {pre.GetRawText()}, not BertPreTokenizer");
        if (!haveConfig && root.TryGetProperty("truncation", out var truncation) && Int(truncation, "max_length") is { } tml && tml >= 3)
            settings = settings with { MaxLength = tml };
        return (tokens, settings);
    }

    private static bool? Bool(JsonElement obj, string name, string path) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) ? NullableBool(v, name, path) : null;

    /// <summary>A string member of a JSON object, or null (absent, another kind, or not an object).</summary>
    private static string? Str(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>An integer member of a JSON object, or null.</summary>
    private static int? Int(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    private static bool? NullableBool(JsonElement v, string name, string path) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        _ => throw new TokenizerFileException(path, $"{name} is {v.GetRawText()}, expected true, false or null"),
    };
}
