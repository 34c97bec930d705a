namespace TransferSharp.Text.Transformers.Tokenization;

/// <summary>
/// A tokenizer file (<c>vocab.txt</c>, <c>tokenizer.json</c>, <c>tokenizer_config.json</c>) cannot be used: empty,
/// binary, malformed JSON, a duplicated token, a missing special token, or a tokenizer of another kind than BERT's
/// WordPiece. The message names the file and, where it helps, the line (<see cref="LineNumber"/>).
/// </summary>
public sealed class TokenizerFileException : InvalidFileException
{
    /// <summary>Creates the exception.</summary>
    public TokenizerFileException(string path, string reason, long? lineNumber = null, Exception? inner = null)
        : base(path, lineNumber is { } l ? $"line {l}: {reason}" : reason, inner)
    {
        LineNumber = lineNumber;
    }

    /// <summary>1-based line of the problem in a vocab.txt, if known.</summary>
    public long? LineNumber { get; }
}

/// <summary>
/// A tokenizer's vocabulary and a model's token-embedding matrix disagree in size: token ids from the tokenizer would
/// index rows the matrix lacks (or the matrix belongs to another vocabulary). Raised by
/// <see cref="BertTextTokenizer.CheckEmbeddingRows"/>.
/// </summary>
public sealed class VocabularySizeMismatchException : TransferSharpException
{
    /// <summary>Creates the exception.</summary>
    public VocabularySizeMismatchException(string vocabularySource, int vocabularySize, string embeddingName, long embeddingRows)
        : base($"the vocabulary of {vocabularySource} has {vocabularySize} tokens but {embeddingName} has {embeddingRows} rows: "
            + "the tokenizer files belong to another model than the weights")
    {
        VocabularySource = vocabularySource;
        VocabularySize = vocabularySize;
        EmbeddingName = embeddingName;
        EmbeddingRows = embeddingRows;
    }

    /// <summary>Where the vocabulary came from (a file or folder).</summary>
    public string VocabularySource { get; }

    /// <summary>Tokens in the vocabulary (the highest id plus one).</summary>
    public int VocabularySize { get; }

    /// <summary>The embedding matrix's name (a state-dict key or graph node).</summary>
    public string EmbeddingName { get; }

    /// <summary>Rows of the embedding matrix.</summary>
    public long EmbeddingRows { get; }
}
