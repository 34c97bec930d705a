using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Text.Transformers.Tokenization;

/// <summary>One text (or text pair) as token ids, [CLS] and [SEP] included.</summary>
/// <param name="Ids">The token ids.</param>
/// <param name="TokenTypeIds">0 for the first text's tokens (with [CLS] and its [SEP]), 1 for the second's.</param>
/// <param name="UntruncatedLength">How many tokens the text had before truncation, specials included.</param>
public sealed record BertEncoding(int[] Ids, int[] TokenTypeIds, int UntruncatedLength)
{
    /// <summary>Whether tokens were cut to fit the maximum length.</summary>
    public bool Truncated => UntruncatedLength > Ids.Length;
}

/// <summary>
/// A batch of texts as the int64 tensors a BERT encoder takes, <c>[N, T]</c> with T the longest encoded text of the
/// batch: <see cref="InputIds"/> (padded with the padding token's id), <see cref="AttentionMask"/> (1 on real tokens,
/// 0 on padding) and <see cref="TokenTypeIds"/>. Texts longer than the tokenizer's maximum are truncated, and say so in
/// <see cref="TruncatedIndices"/>. Dispose it to free the tensors.
/// </summary>
public sealed class TokenizedBatch : IDisposable
{
    internal TokenizedBatch(IReadOnlyList<BertEncoding> encodings, int paddingId, int maxLength)
    {
        Encodings = encodings;
        MaxLength = maxLength;
        int n = encodings.Count, t = encodings.Max(e => e.Ids.Length);
        var ids = new long[n * t];
        var mask = new long[n * t];
        var types = new long[n * t];
        Array.Fill(ids, paddingId);
        var truncated = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var e = encodings[i];
            for (int j = 0; j < e.Ids.Length; j++)
            {
                ids[i * t + j] = e.Ids[j];
                mask[i * t + j] = 1;
                types[i * t + j] = e.TokenTypeIds[j];
            }
            if (e.Truncated) truncated.Add(i);
        }
        TruncatedIndices = truncated;
        InputIds = torch.tensor(ids, [n, t]);
        AttentionMask = torch.tensor(mask, [n, t]);
        TokenTypeIds = torch.tensor(types, [n, t]);
    }

    /// <summary>Token ids, int64 <c>[N, T]</c>.</summary>
    public Tensor InputIds { get; }

    /// <summary>1 where a token is, 0 on padding; int64 <c>[N, T]</c>.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>Segment ids (0 first text, 1 second text, 0 on padding); int64 <c>[N, T]</c>.</summary>
    public Tensor TokenTypeIds { get; }

    /// <summary>Each text's encoding, unpadded, in input order.</summary>
    public IReadOnlyList<BertEncoding> Encodings { get; }

    /// <summary>The maximum length the texts were truncated to.</summary>
    public int MaxLength { get; }

    /// <summary>Indices of the texts that were longer than <see cref="MaxLength"/> and lost their tail.</summary>
    public IReadOnlyList<int> TruncatedIndices { get; }

    /// <summary>How many texts were truncated (a caller that prints warnings reports this).</summary>
    public int TruncatedCount => TruncatedIndices.Count;

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        TokenTypeIds.Dispose();
    }
}
