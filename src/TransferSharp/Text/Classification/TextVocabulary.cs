namespace TransferSharp.Text.Classification;

/// <summary>
/// The vocabulary of a text model, built from its training data: index 0 is the padding token, 1 the unknown
/// token, then the words seen at least <c>minCount</c> times, most frequent first (ties in order of first
/// appearance). Tokens are the whitespace-separated pieces of the text (as fastText tokenises), optionally
/// lower-cased.
/// </summary>
public sealed class TextVocabulary
{
    /// <summary>The padding token (index 0; its embedding stays zero).</summary>
    public const string Padding = "<pad>";

    /// <summary>The unknown-word token (index 1).</summary>
    public const string Unknown = "<unk>";

    private readonly Dictionary<string, int> _index;

    /// <summary>A vocabulary from its tokens in index order (the first two must be <see cref="Padding"/> and <see cref="Unknown"/>).</summary>
    public TextVocabulary(IReadOnlyList<string> tokens, bool lowercase)
    {
        if (tokens.Count < 2 || tokens[0] != Padding || tokens[1] != Unknown)
            throw new ArgumentException($"a vocabulary starts with {Padding} and {Unknown}", nameof(tokens));
        Tokens = tokens;
        Lowercase = lowercase;
        _index = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++) _index.TryAdd(tokens[i], i);
    }

    /// <summary>Tokens in index order.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Whether text is lower-cased before lookup.</summary>
    public bool Lowercase { get; }

    /// <summary>Number of tokens, padding and unknown included.</summary>
    public int Count => Tokens.Count;

    /// <summary>Builds the vocabulary of a corpus.</summary>
    public static TextVocabulary Build(IEnumerable<string> texts, int minCount = 1, int? maxSize = null, bool lowercase = false)
    {
        var counts = new Dictionary<string, (int Count, int First)>(StringComparer.Ordinal);
        int order = 0;
        foreach (var text in texts)
            foreach (var token in Tokenize(text, lowercase))
                counts[token] = counts.TryGetValue(token, out var c) ? (c.Count + 1, c.First) : (1, order++);
        var words = counts.Where(p => p.Value.Count >= minCount && p.Key != Padding && p.Key != Unknown)
            .OrderByDescending(p => p.Value.Count).ThenBy(p => p.Value.First).Select(p => p.Key);
        if (maxSize is { } max) words = words.Take(Math.Max(0, max - 2));
        return new TextVocabulary([Padding, Unknown, .. words], lowercase);
    }

    /// <summary>The whitespace-separated tokens of a text.</summary>
    public static IEnumerable<string> Tokenize(string text, bool lowercase) =>
        (lowercase ? text.ToLowerInvariant() : text).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The index of a token (1 for unknown tokens).</summary>
    public int IndexOf(string token) => _index.TryGetValue(token, out int i) ? i : 1;

    /// <summary>The indices of a text's tokens, at most <paramref name="maxLength"/> (at least one: an empty
    /// text becomes the unknown token).</summary>
    public int[] Encode(string text, int maxLength)
    {
        var ids = Tokenize(text, Lowercase).Take(maxLength).Select(IndexOf).ToArray();
        return ids.Length == 0 ? [1] : ids;
    }
}
