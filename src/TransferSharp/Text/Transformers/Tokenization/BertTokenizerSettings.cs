namespace TransferSharp.Text.Transformers.Tokenization;

/// <summary>
/// How a BERT WordPiece tokenizer normalizes, splits and truncates: the settings of Hugging Face's
/// <c>BertNormalizer</c> and <c>WordPiece</c> model (read from <c>tokenizer.json</c>) and <c>tokenizer_config.json</c>'s
/// <c>do_lower_case</c> and <c>model_max_length</c>. The defaults are bert-base-uncased's (and all-MiniLM-L6-v2's).
/// </summary>
public sealed record BertTokenizerSettings
{
    /// <summary>Lowercase the text (<c>lowercase</c> / <c>do_lower_case</c>).</summary>
    public bool Lowercase { get; init; } = true;

    /// <summary>Remove accents (NFD, then drop non-spacing marks); null follows <see cref="Lowercase"/>, as Hugging Face does.</summary>
    public bool? StripAccents { get; init; }

    /// <summary>Put spaces around CJK ideographs so each is its own word (<c>handle_chinese_chars</c>).</summary>
    public bool HandleChineseCharacters { get; init; } = true;

    /// <summary>The most tokens of an encoded text, [CLS] and [SEP] included (<c>model_max_length</c>); longer texts are
    /// truncated and counted in <see cref="TokenizedBatch.TruncatedCount"/>.</summary>
    public int MaxLength { get; init; } = 512;

    /// <summary>Longer words become the unknown token whole (<c>max_input_chars_per_word</c>).</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;

    /// <summary>Marks a word piece that continues a word.</summary>
    public string ContinuingSubwordPrefix { get; init; } = "##";

    /// <summary>The token of words the vocabulary cannot spell.</summary>
    public string UnknownToken { get; init; } = "[UNK]";

    /// <summary>The first token of every sequence.</summary>
    public string ClassificationToken { get; init; } = "[CLS]";

    /// <summary>Ends each text of a sequence.</summary>
    public string SeparatorToken { get; init; } = "[SEP]";

    /// <summary>Fills the positions after a shorter text of a batch.</summary>
    public string PaddingToken { get; init; } = "[PAD]";

    /// <summary>The masked-language-model token.</summary>
    public string MaskToken { get; init; } = "[MASK]";

    /// <summary>Whether accents are stripped: <see cref="StripAccents"/>, or <see cref="Lowercase"/> when it is null.</summary>
    public bool StripsAccents => StripAccents ?? Lowercase;

    internal IEnumerable<string> SpecialTokens => [UnknownToken, ClassificationToken, SeparatorToken, PaddingToken, MaskToken];
}
