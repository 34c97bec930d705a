// Sentence similarity over word vectors through Microsoft.Extensions.AI: the texts are embedded by an
// IEmbeddingGenerator<string, Embedding<float>> from DI (mean or SIF-weighted word vectors), then compared.
using System.Numerics.Tensors;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using TransferSharp.Extensions.AI;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: SentenceSimilarity VECTORS_FILE [--sif] SENTENCE SENTENCE...   (word2vec, GloVe, fastText .vec/.bin)");
    return 2;
}
var sentences = args[1..].Where(a => a != "--sif").ToArray();
var services = new ServiceCollection();
services.AddWordVectorEmbeddingGenerator(args[0], new WordVectorEmbeddingOptions { Pooling = args.Contains("--sif") ? SentencePooling.Sif : SentencePooling.Mean });
using var provider = services.BuildServiceProvider();
var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
var embeddings = await generator.GenerateAsync(sentences);
for (int i = 0; i < sentences.Length; i++)
    for (int j = i + 1; j < sentences.Length; j++)
        Console.WriteLine($"{TensorPrimitives.CosineSimilarity(embeddings[i].Vector.Span, embeddings[j].Vector.Span):F3}  \"{sentences[i]}\" ~ \"{sentences[j]}\"");
return 0;
