using System.Text.Json;
using TransferSharp.Onnx;
using TransferSharp.Text.Transformers.Tokenization;
using TransferSharp.Training;
using TransferSharp.Vision.Graph;
using TransferSharp.Weights;
using static TorchSharp.torch;

namespace TransferSharp.Text.Transformers;

/// <summary>How the token vectors of a text become one vector (sentence-transformers' Pooling module).</summary>
public enum TextPooling
{
    /// <summary>The mean of the token vectors where the attention mask is 1 (padding left out).</summary>
    Mean,

    /// <summary>The vector of the first token ([CLS]), as BGE and other retrieval models use it.</summary>
    Cls,
}

/// <summary>
/// A pretrained text encoder ready to use: a BERT-family encoder graph (<see cref="Bert"/>, or an imported ONNX file), the
/// tokenizer it was trained with, and how its last hidden state is pooled and normalised into one vector per text — what
/// a sentence-transformers model is. Sentence embeddings (<see cref="Encode"/>), feature extraction and fine-tuning
/// (<see cref="Forward(TokenizedBatch)"/>) all go through it. <see cref="Encode"/> runs the graph in TorchSharp, or in another
/// runtime given by <see cref="UseEngine"/> (ONNX Runtime, whose CPU kernels are faster on some machines); training always
/// runs TorchSharp. It owns <see cref="Module"/> and its engine; dispose it to free them.
/// </summary>
public sealed class TextEncoder : IDisposable
{
    /// <summary>Texts per forward pass of <see cref="Encode"/> by default.</summary>
    public const int DefaultBatchSize = 32;

    /// <summary>An encoder from its parts. <paramref name="module"/>'s graph output must be the last hidden state
    /// [N, T, hidden] and its inputs the token ids plus the extra inputs <see cref="Bert.AttentionMask"/> and
    /// <see cref="Bert.TokenTypeIds"/>; the encoder takes ownership of it.</summary>
    public TextEncoder(GraphModule module, BertTextTokenizer tokenizer, string name, TextPooling pooling = TextPooling.Mean, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var inputs = module.Graph.ExtraInputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        if (!inputs.Contains(Bert.AttentionMask))
            throw new GraphException($"{name}: the encoder graph has no '{Bert.AttentionMask}' input: not a BERT-family encoder");
        Module = module;
        // A tokenizer without its own limit (a folder without tokenizer settings: 512) must not cut texts longer than the
        // model has position embeddings for: it takes the model's limit.
        int positions = module.Graph.Nodes.Select(n => n.Op).OfType<EmbeddingOp>().Where(e => e.Positions).Select(e => e.Count).DefaultIfEmpty(int.MaxValue).Min();
        Tokenizer = tokenizer.Settings.MaxLength > positions ? tokenizer.WithSettings(tokenizer.Settings with { MaxLength = positions }) : tokenizer;
        Name = name;
        Pooling = pooling;
        Normalize = normalize;
        _hasTokenTypes = inputs.Contains(Bert.TokenTypeIds);
        Dimension = (int)module.Graph.Shapes[module.Graph.Output][^1];
    }

    private readonly bool _hasTokenTypes;

    /// <summary>The encoder graph with its weights (train or eval mode as the caller sets it).</summary>
    public GraphModule Module { get; }

    /// <summary>The tokenizer; its <see cref="BertTokenizerSettings.MaxLength"/> is the longest text the encoder reads.</summary>
    public BertTextTokenizer Tokenizer { get; }

    /// <summary>A name for reports and embeddings' model id (the folder, file or catalog name it came from).</summary>
    public string Name { get; }

    /// <summary>How token vectors are pooled.</summary>
    public TextPooling Pooling { get; }

    /// <summary>Whether pooled vectors are scaled to unit L2 length.</summary>
    public bool Normalize { get; }

    /// <summary>Length of the text vectors (the encoder's hidden size).</summary>
    public int Dimension { get; }

    /// <summary>The runtime <see cref="Encode"/> runs the encoder in, or null for the TorchSharp graph (<see cref="Module"/>).</summary>
    public ITextInferenceEngine? Engine { get; private set; }

    /// <summary>
    /// Makes <see cref="Encode"/> run in <paramref name="engine"/> (null: back to the TorchSharp graph). The encoder takes
    /// ownership of it and disposes the engine it replaces. The engine must have been built from this encoder's current
    /// weights; <see cref="Forward(TokenizedBatch)"/> and training are not affected.
    /// </summary>
    public void UseEngine(ITextInferenceEngine? engine)
    {
        if (ReferenceEquals(engine, Engine)) return;
        Engine?.Dispose();
        Engine = engine;
    }

    /// <summary>
    /// Loads an encoder from a Hugging Face / sentence-transformers model folder (<c>config.json</c>, <c>model.safetensors</c>
    /// or <c>pytorch_model.bin</c>, <c>tokenizer.json</c> or <c>vocab.txt</c>), from an ONNX file of a BERT-family encoder
    /// with its tokenizer files beside it, or by name from the weight registry's text encoders ("all-MiniLM-L6-v2",
    /// "BAAI/bge-small-en-v1.5", "all-MiniLM-L6-v2.hub"; see <see cref="WeightRegistry.TextEncoders"/>): a bundled encoder
    /// is written to the weight cache once, a hub one downloaded into it (pinned commit, SHA-256 checked) unless already
    /// there. Pooling and normalisation follow the folder's sentence-transformers files (<c>1_Pooling/config.json</c>, a
    /// Normalize module in <c>modules.json</c>); without them, mean pooling and no normalisation. The module is in eval mode.
    /// A path that is neither a file, a folder nor a text encoder's name raises <see cref="UnknownWeightsException"/>.
    /// </summary>
    /// <param name="path">A folder, an .onnx file, or a text encoder's name.</param>
    /// <param name="cache">The weight cache for names (default: <see cref="WeightCache.FromEnvironment"/>, which honours
    /// TRANSFERSHARP_HOME and TRANSFERSHARP_OFFLINE).</param>
    /// <param name="progress">Download progress, when a name's files are fetched.</param>
    /// <param name="cancellation">Cancels a download.</param>
    public static TextEncoder Load(string path, WeightCache? cache = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        string folder, name;
        GraphModule module;
        if (Directory.Exists(path))
        {
            folder = Path.GetFullPath(path);
            name = Path.GetFileName(folder.TrimEnd(Path.DirectorySeparatorChar));
            module = Bert.Load(folder);
        }
        else if (File.Exists(path) && path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            name = Path.GetFileName(folder);
            module = ImportOnnx(path);
        }
        else if (File.Exists(path))
            throw new InvalidFileException(path, "is neither a model folder nor an .onnx file: give a Hugging Face model folder or an ONNX encoder");
        else if (WeightRegistry.FindTextEncoder(path) is { } tag)
        {
            folder = (cache ?? WeightCache.FromEnvironment()).GetAsync(tag, progress, cancellation).GetAwaiter().GetResult();
            name = tag.Architecture;
            module = Bert.Load(folder);
        }
        else
        {
            var known = WeightRegistry.TextEncoders.Select(t => t.Architecture).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            throw new UnknownWeightsException($"{path}: no such file or folder, nor a text encoder's name; text encoders: "
                + (known.Count == 0 ? "none registered" : string.Join(", ", known)) + " (or give a Hugging Face model folder or an ONNX encoder)");
        }
        try
        {
            var tokenizer = BertTextTokenizer.Load(folder);
            var (pooling, normalize) = ReadSentenceTransformersConfig(folder);
            CheckVocabulary(module, tokenizer);
            return new TextEncoder(module, tokenizer, name, pooling, normalize);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>An ONNX encoder (PyTorch's export of a Hugging Face BertModel) imported as a trainable graph whose output is
    /// the last hidden state, in eval mode.</summary>
    internal static GraphModule ImportOnnx(string path)
    {
        path = Path.GetFullPath(path);
        var file = OnnxModelFile.Read(path);
        var options = file.Graph.Output.Any(o => o.Name == "last_hidden_state") ? new OnnxImportOptions { Output = "last_hidden_state" } : null;
        return OnnxImporter.Import(path, file, options).CreateModule();
    }

    /// <summary>Refuses a tokenizer whose vocabulary does not fit the encoder's token-embedding table.</summary>
    internal static void CheckVocabulary(GraphModule module, BertTextTokenizer tokenizer)
    {
        var table = module.Graph.Nodes.FirstOrDefault(n => n.Op is EmbeddingOp { Positions: false });
        if (table?.Op is EmbeddingOp embedding) tokenizer.CheckEmbeddingRows(embedding.Count, $"{table.Name}.weight", allowExtraRows: true);
    }

    /// <summary>Pooling and normalisation from a sentence-transformers folder: <c>modules.json</c> lists the modules
    /// (a <c>…Normalize</c> module means unit-length vectors), <c>1_Pooling/config.json</c> (or the pooling module's
    /// path) says which pooling. Without those files: mean pooling, no normalisation.</summary>
    private static (TextPooling Pooling, bool Normalize) ReadSentenceTransformersConfig(string folder)
    {
        var pooling = TextPooling.Mean;
        bool normalize = false;
        string poolingFolder = Path.Combine(folder, "1_Pooling");
        var modules = Path.Combine(folder, "modules.json");
        if (File.Exists(modules))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(modules));
                foreach (var m in doc.RootElement.EnumerateArray())
                {
                    var type = m.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
                    var modulePath = m.TryGetProperty("path", out var p) ? p.GetString() ?? "" : "";
                    if (type.EndsWith(".Normalize", StringComparison.Ordinal)) normalize = true;
                    if (type.EndsWith(".Pooling", StringComparison.Ordinal) && modulePath.Length > 0) poolingFolder = Path.Combine(folder, modulePath);
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new InvalidFileException(modules, $"is not a sentence-transformers modules list: {e.Message}", e);
            }
        }
        var poolingConfig = Path.Combine(poolingFolder, "config.json");
        if (File.Exists(poolingConfig))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(poolingConfig));
                bool Flag(string key) => doc.RootElement.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.True;
                if (Flag("pooling_mode_cls_token")) pooling = TextPooling.Cls;
                else if (Flag("pooling_mode_mean_tokens")) pooling = TextPooling.Mean;
                else throw new InvalidFileException(poolingConfig, "asks for a pooling other than mean or CLS (max, weighted mean, last token): not supported");
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new InvalidFileException(poolingConfig, $"is not a sentence-transformers pooling config: {e.Message}", e);
            }
        }
        return (pooling, normalize);
    }

    /// <summary>
    /// Pooled (and, with <see cref="Normalize"/>, normalised) vectors [N, <see cref="Dimension"/>] of a tokenized batch,
    /// through the graph in whatever mode it is in: with gradients when they are enabled, so training builds on it.
    /// </summary>
    public Tensor Forward(TokenizedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Forward(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds);
    }

    /// <summary>
    /// <see cref="Forward(TokenizedBatch)"/> on token ids and attention mask [N, T] (int64) made elsewhere, e.g. by a
    /// classifier that pads its own batches; token types default to 0 (one text per row).
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var scope = NewDisposeScope();
        var device = Module.parameters().FirstOrDefault()?.device ?? CPU;
        var feeds = new Dictionary<string, Tensor>
        {
            [ModelGraph.InputName] = inputIds.to(device),
            [Bert.AttentionMask] = attentionMask.to(device),
        };
        if (_hasTokenTypes) feeds[Bert.TokenTypeIds] = (tokenTypeIds ?? zeros_like(inputIds)).to(device);
        var hidden = Module.Run(feeds, [Module.Graph.Output])[0];
        return Pool(hidden, feeds[Bert.AttentionMask], Pooling, Normalize).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Pools a last hidden state [N, T, hidden] into [N, hidden] as sentence-transformers does: <see cref="TextPooling.Mean"/>
    /// averages the tokens where <paramref name="attentionMask"/> is 1 (a row without tokens divides by 1e-9, as the
    /// reference clamps it), <see cref="TextPooling.Cls"/> takes the first token; then, with <paramref name="normalize"/>,
    /// scales each vector to unit L2 length.
    /// </summary>
    public static Tensor Pool(Tensor hidden, Tensor attentionMask, TextPooling pooling, bool normalize)
    {
        using var scope = NewDisposeScope();
        Tensor pooled;
        if (pooling == TextPooling.Cls) pooled = hidden.select(1, 0);
        else
        {
            var weights = attentionMask.to_type(hidden.dtype).unsqueeze(-1);
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9);
        }
        if (normalize) pooled = nn.functional.normalize(pooled, p: 2, dim: 1);
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sentence embeddings of <paramref name="texts"/>, one float vector each, in order: texts are sorted by length and
    /// encoded <paramref name="batchSize"/> at a time (so padding stays short), by <see cref="Engine"/> when one is set,
    /// else by the graph in eval mode without gradients (the module's mode is restored afterwards). Texts longer than the tokenizer's maximum are truncated (their indices in
    /// <paramref name="truncated"/> when given). <paramref name="progress"/> reports texts done ("encode").
    /// </summary>
    public float[][] Encode(IReadOnlyList<string> texts, int batchSize = DefaultBatchSize, IProgress<ProgressInfo>? progress = null,
        ICollection<int>? truncated = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize < 1) throw new InvalidOptionException("batchSize", $"must be at least 1, not {batchSize}");
        var result = new float[texts.Count][];
        if (texts.Count == 0) return result;
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new InvalidOptionException("texts", $"text {i} is null");
        // Longest first, as sentence-transformers orders them: similar lengths share a batch and pad little.
        var order = Enumerable.Range(0, texts.Count).OrderByDescending(i => texts[i].Length).ToArray();
        bool wasTraining = Module.training;
        Module.eval();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            using var noGrad = no_grad();
            for (int start = 0; start < order.Length; start += batchSize)
            {
                cancellation.ThrowIfCancellationRequested();
                var indices = order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray();
                using var scope = NewDisposeScope();
                using var batch = Tokenizer.EncodeBatch(indices.Select(i => texts[i]).ToArray());
                if (truncated is not null)
                    foreach (int k in batch.TruncatedIndices) truncated.Add(indices[k]);
                var vectors = Infer(batch).to(CPU).contiguous().data<float>().ToArray();
                for (int k = 0; k < indices.Length; k++) result[indices[k]] = vectors.AsSpan(k * Dimension, Dimension).ToArray();
                int done = start + indices.Length;
                progress?.Report(new ProgressInfo("encode", done, order.Length, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
            }
        }
        finally
        {
            Module.train(wasTraining);
        }
        return result;
    }

    /// <summary>Pooled vectors of a batch for <see cref="Encode"/>: the engine's last hidden state pooled here, or
    /// <see cref="Forward(TokenizedBatch)"/>.</summary>
    private Tensor Infer(TokenizedBatch batch)
    {
        if (Engine is null) return Forward(batch);
        using var scope = NewDisposeScope();
        var hidden = Engine.LastHiddenState(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds);
        return Pool(hidden, batch.AttentionMask, Pooling, Normalize).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Engine?.Dispose();
        Engine = null;
        Module.Dispose();
    }
}
