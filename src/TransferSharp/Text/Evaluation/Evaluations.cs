namespace TransferSharp.Text.Evaluation;

/// <summary>Options of <see cref="WordVectors.EvaluateAnalogies"/>, with gensim 4.2's defaults.</summary>
public sealed record AnalogyEvaluationOptions
{
    /// <summary>Only the first N words take part: questions with any other word count as out of vocabulary,
    /// and answers are searched among them only (gensim's <c>restrict_vocab</c>, default 300,000).</summary>
    public int RestrictVocab { get; init; } = 300_000;

    /// <summary>Compare upper-cased (Python's <c>str.upper</c>); for several case variants of a word the first
    /// in the vocabulary's order is used (default true, as gensim).</summary>
    public bool CaseInsensitive { get; init; } = true;

    /// <summary>Count questions with out-of-vocabulary words as wrong instead of skipping them
    /// (gensim's <c>dummy4unknown</c>, default false).</summary>
    public bool Dummy4Unknown { get; init; }
}

/// <summary>An analogy question "A is to B as C is to Expected" and what the vectors answered.</summary>
/// <param name="A">First word (case-folded when the evaluation is case-insensitive).</param>
/// <param name="B">Second word.</param>
/// <param name="C">Third word.</param>
/// <param name="Expected">The expected answer.</param>
/// <param name="Predicted">The answer chosen (null when the question was out of vocabulary).</param>
public readonly record struct AnalogyQuestion(string A, string B, string C, string Expected, string? Predicted);

/// <summary>One section of the questions file (": capital-common-countries" …) or the total.</summary>
public sealed record AnalogySection(string Name, IReadOnlyList<AnalogyQuestion> Correct, IReadOnlyList<AnalogyQuestion> Incorrect)
{
    /// <summary>Correct / (correct + incorrect), or 0 when the section has no evaluated question (as gensim).</summary>
    public double Accuracy => Correct.Count + Incorrect.Count == 0 ? 0 : (double)Correct.Count / (Correct.Count + Incorrect.Count);
}

/// <summary>The result of an analogy evaluation, as gensim's <c>evaluate_word_analogies</c> reports it.</summary>
/// <param name="Accuracy">Overall accuracy (the score gensim returns).</param>
/// <param name="Sections">Per section, in file order (gensim's list without its final total).</param>
/// <param name="Total">All sections together ("Total accuracy").</param>
/// <param name="Questions">Lines with four words (the ones gensim counts).</param>
/// <param name="OutOfVocabulary">Questions with a word outside the (restricted, case-folded) vocabulary.</param>
public sealed record AnalogyEvaluationResult(double Accuracy, IReadOnlyList<AnalogySection> Sections, AnalogySection Total, int Questions, int OutOfVocabulary)
{
    /// <summary>Percentage of questions with out-of-vocabulary words (gensim logs it).</summary>
    public double OutOfVocabularyPercent => Questions == 0 ? 0 : 100.0 * OutOfVocabulary / Questions;
}

/// <summary>Options of <see cref="WordVectors.EvaluateWordPairs"/>, with gensim 4.2's defaults.</summary>
public sealed record WordPairEvaluationOptions
{
    /// <summary>Field separator (default tab).</summary>
    public char Delimiter { get; init; } = '\t';

    /// <summary>Only the first N words take part (default 300,000).</summary>
    public int RestrictVocab { get; init; } = 300_000;

    /// <summary>Compare upper-cased (default true).</summary>
    public bool CaseInsensitive { get; init; } = true;

    /// <summary>Give pairs with unknown words similarity 0 instead of skipping them (default false).</summary>
    public bool Dummy4Unknown { get; init; }
}

/// <summary>The result of a word-pair evaluation, as gensim's <c>evaluate_word_pairs</c> reports it.</summary>
/// <param name="Pearson">Pearson's r between the file's scores and the cosine similarities.</param>
/// <param name="PearsonPValue">Its two-sided p-value.</param>
/// <param name="Spearman">Spearman's ρ (ties get average ranks).</param>
/// <param name="SpearmanPValue">Its two-sided p-value.</param>
/// <param name="OutOfVocabularyPercent">Pairs with unknown words, in percent (gensim's <c>oov_ratio</c>).</param>
/// <param name="Pairs">Pairs that entered the correlation.</param>
/// <param name="OutOfVocabulary">Pairs with a word outside the (restricted, case-folded) vocabulary.</param>
public sealed record WordPairEvaluationResult(double Pearson, double PearsonPValue, double Spearman, double SpearmanPValue,
    double OutOfVocabularyPercent, int Pairs, int OutOfVocabulary);
