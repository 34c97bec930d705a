using System.Text;

namespace TransferSharp.Text.FastText;

/// <summary>
/// fastText's dictionary: words then labels (ids ≥ nwords), with counts; the character n-grams of a word and
/// the word n-grams of a line, hashed into buckets exactly as fastText 0.9.2 does (FNV-1a over the UTF-8
/// bytes, each byte sign-extended as a signed char; n-grams start only at UTF-8 lead bytes; "&lt;" and "&gt;"
/// mark the word's ends; a quantized model's pruning table maps the surviving buckets).
/// </summary>
internal sealed class FastTextDictionary
{
    public const string EndOfSentence = "</s>";
    public const string LabelPrefix = "__label__";

    private readonly Dictionary<string, int> _ids;

    public FastTextDictionary(FastTextArgs args, string[] words, byte[][] wordBytes, long[] counts, byte[] types,
        int nwords, int nlabels, long ntokens, long pruneIdxSize, Dictionary<int, int>? pruneIdx)
    {
        Args = args;
        Words = words;
        WordBytes = wordBytes;
        Counts = counts;
        Types = types;
        NWords = nwords;
        NLabels = nlabels;
        NTokens = ntokens;
        PruneIdxSize = pruneIdxSize;
        PruneIdx = pruneIdx;
        _ids = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++) _ids.TryAdd(words[i], i);
    }

    public FastTextArgs Args { get; }
    public string[] Words { get; }
    public byte[][] WordBytes { get; }
    public long[] Counts { get; }
    public byte[] Types { get; }
    public int NWords { get; }
    public int NLabels { get; }
    public long NTokens { get; }
    public long PruneIdxSize { get; }
    public Dictionary<int, int>? PruneIdx { get; }
    public bool IsPruned => PruneIdxSize >= 0;

    public int GetId(string word) => _ids.TryGetValue(word, out int id) ? id : -1;

    public bool IsLabel(int id) => Types[id] == 1;

    public static bool IsLabelToken(string token) => token.StartsWith(LabelPrefix, StringComparison.Ordinal);

    /// <summary>FNV-1a as fastText computes it: each byte is sign-extended (a signed char) before the xor.</summary>
    public static uint Hash(ReadOnlySpan<byte> bytes)
    {
        uint h = 2166136261;
        foreach (byte b in bytes)
        {
            h ^= (uint)(sbyte)b;
            h *= 16777619;
        }
        return h;
    }

    /// <summary>The input rows of a word: its own row (if in the vocabulary) then its character n-grams.</summary>
    public void GetSubwords(string word, List<int> rows, List<string>? substrings = null)
    {
        int id = GetId(word);
        if (id >= 0)
        {
            rows.Add(id);
            substrings?.Add(Words[id]);
        }
        if (word != EndOfSentence) ComputeSubwords(WithMarkers(id >= 0 ? WordBytes[id] : Encoding.UTF8.GetBytes(word)), rows, substrings);
    }

    /// <summary>The input rows fastText averages for a word vector: for a vocabulary word, the word and its
    /// n-grams (only the word for "&lt;/s&gt;"); for any other word, its n-grams.</summary>
    public void GetWordRows(int id, List<int> rows)
    {
        rows.Add(id);
        if (Words[id] != EndOfSentence) ComputeSubwords(WithMarkers(WordBytes[id]), rows, null);
    }

    private static byte[] WithMarkers(byte[] word)
    {
        var marked = new byte[word.Length + 2];
        marked[0] = (byte)'<';
        word.CopyTo(marked, 1);
        marked[^1] = (byte)'>';
        return marked;
    }

    private void ComputeSubwords(ReadOnlySpan<byte> word, List<int> rows, List<string>? substrings)
    {
        int minn = Args.MinN, maxn = Args.MaxN;
        if (maxn <= 0 || Args.Bucket <= 0) return;
        for (int i = 0; i < word.Length; i++)
        {
            if ((word[i] & 0xC0) == 0x80) continue;
            int j = i;
            for (int n = 1; j < word.Length && n <= maxn; n++)
            {
                j++;
                while (j < word.Length && (word[j] & 0xC0) == 0x80) j++;
                if (n >= minn && !(n == 1 && (i == 0 || j == word.Length)))
                {
                    var ngram = word[i..j];
                    int h = (int)(Hash(ngram) % (uint)Args.Bucket);
                    PushHash(rows, h);
                    substrings?.Add(Encoding.UTF8.GetString(ngram));
                }
            }
        }
    }

    private void PushHash(List<int> rows, int id)
    {
        if (PruneIdxSize == 0 || id < 0) return;
        if (PruneIdxSize > 0)
        {
            if (!PruneIdx!.TryGetValue(id, out id)) return;
        }
        rows.Add(NWords + id);
    }

    /// <summary>
    /// The input rows of one line of a classifier's input, as fastText's <c>getLine</c> builds them: tokens split
    /// at whitespace and NUL, the end-of-line token "&lt;/s&gt;" appended, each known word's rows (or, for
    /// unknown words, their character n-grams), labels set aside, then word n-grams hashed from all word tokens.
    /// </summary>
    public void GetLine(string line, List<int> words, List<int>? labels)
    {
        words.Clear();
        labels?.Clear();
        var hashes = new List<int>();
        foreach (var token in Tokens(line))
        {
            var bytes = Encoding.UTF8.GetBytes(token);
            uint h = Hash(bytes);
            int id = GetId(token);
            bool isLabel = id < 0 ? IsLabelToken(token) : IsLabel(id);
            if (!isLabel)
            {
                if (id < 0)
                {
                    if (token != EndOfSentence) ComputeSubwords(WithMarkers(bytes), words, null);
                }
                else if (Args.MaxN <= 0) words.Add(id);
                else GetWordRows(id, words);
                hashes.Add((int)h);
            }
            else if (id >= 0) labels?.Add(id - NWords);
            if (token == EndOfSentence) break;
        }
        AddWordNgrams(words, hashes, Args.WordNgrams);
    }

    private void AddWordNgrams(List<int> rows, List<int> hashes, int n)
    {
        if (Args.Bucket <= 0) return;
        for (int i = 0; i < hashes.Count; i++)
        {
            // fastText keeps the hashes as int32 and widens them to uint64 with sign extension.
            ulong h = (ulong)(long)hashes[i];
            for (int j = i + 1; j < hashes.Count && j < i + n; j++)
            {
                h = h * 116049371 + (ulong)(long)hashes[j];
                PushHash(rows, (int)(h % (ulong)Args.Bucket));
            }
        }
    }

    /// <summary>The tokens fastText reads from one line: split at ' ', \t, \v, \f, \r, NUL; then "&lt;/s&gt;".</summary>
    public static IEnumerable<string> Tokens(string line)
    {
        int i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && IsSeparator(line[i])) i++;
            int start = i;
            while (i < line.Length && !IsSeparator(line[i])) i++;
            if (i > start) yield return line[start..i];
        }
        yield return EndOfSentence;
    }

    private static bool IsSeparator(char c) => c is ' ' or '\t' or '\v' or '\f' or '\r' or '\0';

    public List<long> LabelCounts()
    {
        var counts = new List<long>(NLabels);
        for (int i = 0; i < Words.Length; i++)
            if (Types[i] == 1) counts.Add(Counts[i]);
        return counts;
    }
}
