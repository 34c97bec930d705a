using System.Collections.Frozen;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace TransferSharp.Text.Transformers.Tokenization;

/// <summary>
/// Hugging Face's <c>BertNormalizer</c> (the Rust <c>tokenizers</c> crate that reads tokenizer.json), step for step:
/// clean text, space out CJK ideographs, strip accents, lowercase. Microsoft.ML.Tokenizers' own BERT normalizer differs
/// in ways that change ids (it deletes tabs and newlines instead of making them spaces, keeps format characters such as
/// U+200B, recomposes to NFC so decomposed Hangul and combining marks come back, and strips accents only when asked),
/// and .NET's own NFD is a no-op in globalization-invariant mode, so the library's WordPiece runs behind this one.
/// </summary>
internal sealed class BertNormalization(bool lowercase, bool stripAccents, bool handleChineseCharacters) : Normalizer
{
    public override string Normalize(string original) => Normalize(original.AsSpan());

    public override string Normalize(ReadOnlySpan<char> original)
    {
        var sb = new StringBuilder(original.Length + 16);
        Span<char> utf16 = stackalloc char[2];
        foreach (var rune in original.EnumerateRunes())
        {
            // A lone surrogate enumerates as U+FFFD, which Hugging Face drops as well (Python sees category Cs).
            if (rune.Value is 0 or 0xFFFD) continue;
            if (rune.Value is '\t' or '\n' or '\r') { sb.Append(' '); continue; }
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
                or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate) continue;
            if (Rune.IsWhiteSpace(rune)) { sb.Append(' '); continue; }
            int n = rune.EncodeToUtf16(utf16);
            if (handleChineseCharacters && IsCjkIdeograph(rune.Value)) sb.Append(' ').Append(utf16[..n]).Append(' ');
            else sb.Append(utf16[..n]);
        }
        var text = sb.ToString();
        if (stripAccents) text = StripAccents(text);
        return lowercase ? text.ToLowerInvariant() : text;
    }

    /// <summary>NFD, then drop non-spacing marks, from a table (Resources/accent_stripping.txt): string.Normalize does
    /// nothing in .NET's globalization-invariant mode, which this repository and many containers run in.</summary>
    private static string StripAccents(string text)
    {
        var sb = new StringBuilder(text.Length);
        Span<char> utf16 = stackalloc char[2];
        foreach (var rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.NonSpacingMark) continue;
            if (cp is >= HangulFirst and <= HangulLast) AppendHangulJamo(sb, cp);
            else if (AccentStripped.Value.TryGetValue(cp, out var kept)) sb.Append(kept);
            else sb.Append(utf16[..rune.EncodeToUtf16(utf16)]);
        }
        return sb.ToString();
    }

    private const int HangulFirst = 0xAC00, HangulLast = 0xD7A3;

    /// <summary>Unicode's algorithmic decomposition of a precomposed Hangul syllable into its leading consonant, vowel
    /// and optional trailing consonant (letters, not marks, so accent stripping keeps them).</summary>
    private static void AppendHangulJamo(StringBuilder sb, int cp)
    {
        int s = cp - HangulFirst;
        sb.Append((char)(0x1100 + s / 588)).Append((char)(0x1161 + s % 588 / 28));
        if (s % 28 != 0) sb.Append((char)(0x11A7 + s % 28));
    }

    private static readonly Lazy<FrozenDictionary<int, string>> AccentStripped = new(() =>
    {
        using var stream = typeof(BertNormalization).Assembly.GetManifestResourceStream("TransferSharp.Text.accent_stripping.txt")!;
        using var reader = new StreamReader(stream);
        var map = new Dictionary<int, string>();
        while (reader.ReadLine() is { } line)
        {
            if (line.StartsWith('#')) continue;
            var parts = line.Split(' ');
            map[int.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)] =
                string.Concat(parts.Skip(1).Select(p => char.ConvertFromUtf32(int.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture))));
        }
        return map.ToFrozenDictionary();
    });

    /// <summary>The CJK Unified Ideographs blocks and their extensions, as tokenizers' <c>is_chinese_char</c> lists them
    /// (Hangul, Hiragana and Katakana are not among them: those scripts separate words with spaces).</summary>
    private static bool IsCjkIdeograph(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}

/// <summary>Hugging Face's <c>BertPreTokenizer</c> as a pattern for the library's <see cref="RegexPreTokenizer"/>: words
/// are split at white space, and every punctuation character (Unicode P*, and all ASCII symbols such as $ + &lt; = &gt; ^
/// ` | ~, which BERT counts as punctuation) is a word of its own. The library's default pattern (<c>\w+|\p{P}</c>)
/// instead drops every character that is neither (emoji, currency and math symbols, superscripts, spacing marks).</summary>
internal static partial class BertPreTokenization
{
    [GeneratedRegex(@"[\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E]|[^\s\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E]+")]
    private static partial Regex WordOrPunctuation();

    public static PreTokenizer Create(IReadOnlyDictionary<string, int> specialTokens) => new RegexPreTokenizer(WordOrPunctuation(), specialTokens);
}
