using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using TransferSharp.Text.Evaluation;
using TransferSharp.Text.Formats;

namespace TransferSharp.Text;

public sealed partial class WordVectors
{
    /// <summary>
    /// Analogy accuracy on a questions file in Google's format (<c>: section</c> lines, then <c>a b c d</c>
    /// lines meaning a : b :: c : d), following gensim 4.2's <c>evaluate_word_analogies</c> rule for rule:
    /// 3CosAdd over the first <see cref="AnalogyEvaluationOptions.RestrictVocab"/> words, the top 5 answers
    /// scanned for the first one that is not a question word, case folded with Python's upper(), lines that do
    /// not have four words skipped, questions with unknown words skipped (or counted wrong).
    /// </summary>
    public AnalogyEvaluationResult EvaluateAnalogies(string path, AnalogyEvaluationOptions? options = null)
    {
        options ??= new AnalogyEvaluationOptions();
        var okVocab = RestrictedVocabulary(options.RestrictVocab, options.CaseInsensitive);
        string Fold(string w) => options.CaseInsensitive ? PythonCase.Upper(w) : w;
        // First pass: read the questions (gensim's order and counting); then answer all in-vocabulary ones as
        // one batch of matrix products; then score them as gensim does.
        var parsed = new List<(int Section, string A, string B, string C, string Expected, bool Known)>();
        var sectionNames = new List<string>();
        string? name = null;
        int questions = 0, oov = 0, lineNo = 0;
        foreach (var line in IO.StrictUtf8.ReadLines(path))
        {
            if (line.StartsWith(": ", StringComparison.Ordinal))
            {
                name = line.TrimStart(':', ' ').Trim();
                sectionNames.Add(name);
            }
            else
            {
                if (name is null) throw new InvalidFileException(path, $"line {lineNo + 1}: a question before the first ': section' line");
                var words = PythonWhitespaceSplit(line);
                if (words.Length == 4)
                {
                    questions++;
                    string a = Fold(words[0]), b = Fold(words[1]), c = Fold(words[2]), expected = Fold(words[3]);
                    bool inVocabulary = okVocab.ContainsKey(a) && okVocab.ContainsKey(b) && okVocab.ContainsKey(c) && okVocab.ContainsKey(expected);
                    if (!inVocabulary) oov++;
                    parsed.Add((sectionNames.Count - 1, a, b, c, expected, inVocabulary));
                }
            }
            lineNo++;
        }
        var known = parsed.Where(p => p.Known).ToList();
        var answers = AnalogiesByIndex(known.Select(p => (okVocab[p.A], okVocab[p.B], okVocab[p.C])).ToList(), 5, options.RestrictVocab);
        var correct = sectionNames.Select(_ => new List<AnalogyQuestion>()).ToList();
        var incorrect = sectionNames.Select(_ => new List<AnalogyQuestion>()).ToList();
        int next = 0;
        foreach (var p in parsed)
        {
            if (!p.Known)
            {
                if (options.Dummy4Unknown) incorrect[p.Section].Add(new AnalogyQuestion(p.A, p.B, p.C, p.Expected, null));
                continue;
            }
            var ignore = new HashSet<string>(StringComparer.Ordinal) { p.A, p.B, p.C };
            string? predicted = null;
            foreach (var s in answers[next++])
            {
                predicted = Fold(s.Word);
                if (okVocab.ContainsKey(predicted) && !ignore.Contains(predicted)) break;
            }
            (predicted == p.Expected ? correct : incorrect)[p.Section].Add(new AnalogyQuestion(p.A, p.B, p.C, p.Expected, predicted));
        }
        var sections = sectionNames.Select((s, i) => new AnalogySection(s, correct[i], incorrect[i])).ToList();
        if (questions == 0) throw new InvalidFileException(path, $"no analogy questions (lines of four words after a ': section' line)");
        var total = new AnalogySection("Total accuracy", sections.SelectMany(s => s.Correct).ToList(), sections.SelectMany(s => s.Incorrect).ToList());
        return new AnalogyEvaluationResult(total.Accuracy, sections, total, questions, oov);
    }

    /// <summary>
    /// Correlation with human similarity judgements on a WordSim-353-style file (<c>word1 TAB word2 TAB score</c>,
    /// <c>#</c> comment lines), following gensim 4.2's <c>evaluate_word_pairs</c>: cosine similarity per pair
    /// over the first <see cref="WordPairEvaluationOptions.RestrictVocab"/> words (case folded), Pearson and
    /// Spearman (average ranks for ties) with SciPy's two-sided p-values, and the out-of-vocabulary percentage.
    /// </summary>
    public WordPairEvaluationResult EvaluateWordPairs(string path, WordPairEvaluationOptions? options = null)
    {
        options ??= new WordPairEvaluationOptions();
        var okVocab = RestrictedVocabulary(options.RestrictVocab, options.CaseInsensitive);
        var gold = new List<double>();
        var model = new List<double>();
        int oov = 0;
        foreach (var line in IO.StrictUtf8.ReadLines(path))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var fields = (options.CaseInsensitive ? PythonCase.Upper(line) : line).Split(options.Delimiter);
            if (fields.Length != 3 || !TryParsePythonFloat(fields[2], out double sim)) continue;
            string a = fields[0], b = fields[1];
            if (!okVocab.TryGetValue(a, out int ia) || !okVocab.TryGetValue(b, out int ib))
            {
                oov++;
                if (options.Dummy4Unknown)
                {
                    model.Add(0.0);
                    gold.Add(sim);
                }
                continue;
            }
            gold.Add(sim);
            model.Add(SimilarityByIndex(ia, ib));
        }
        if (gold.Count == 0)
            throw new InvalidFileException(path, $"no valid similarity judgements: either the format is not 'word1{(options.Delimiter == '\t' ? "\\t" : options.Delimiter)}word2{(options.Delimiter == '\t' ? "\\t" : options.Delimiter)}score' or every pair is out of vocabulary");
        var (pearson, pearsonP) = Statistics.Pearson(gold, model);
        var (spearman, spearmanP) = Statistics.Spearman(gold, model);
        double oovPercent = options.Dummy4Unknown ? 100.0 * oov / gold.Count : 100.0 * oov / (gold.Count + oov);
        return new WordPairEvaluationResult(pearson, pearsonP, spearman, spearmanP, oovPercent, gold.Count, oov);
    }

    internal float SimilarityByIndex(int a, int b)
    {
        var va = UnitVec(GetVector(a));
        var vb = UnitVec(GetVector(b));
        return TensorPrimitives.Dot(va, vb);
    }

    /// <summary>gensim's ok_vocab: the first N words (upper-cased when case-insensitive, first variant wins).</summary>
    private Dictionary<string, int> RestrictedVocabulary(int restrictVocab, bool caseInsensitive)
    {
        int end = RowsEnd(restrictVocab);
        var map = new Dictionary<string, int>(end, StringComparer.Ordinal);
        for (int i = 0; i < end; i++) map.TryAdd(caseInsensitive ? PythonCase.Upper(_words[i]) : _words[i], i);
        return map;
    }

    /// <summary>Python's str.split(): runs of Unicode whitespace (including U+001C–U+001F) separate words.</summary>
    private static string[] PythonWhitespaceSplit(string s)
    {
        var parts = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsPythonSpace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsPythonSpace(s[i])) i++;
            if (i > start) parts.Add(s[start..i]);
        }
        return [.. parts];
    }

    private static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>Python's float(): surrounding whitespace allowed, underscores between digits ignored, nan/inf.</summary>
    private static bool TryParsePythonFloat(string text, out double value)
    {
        value = 0;
        var s = text.Trim().Replace("_", "");
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length == 0 || DecimalFloat.Parse(bytes, out float f) != bytes.Length) return false;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out value)) value = f;
        return true;
    }
}
