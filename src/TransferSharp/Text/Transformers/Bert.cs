using System.Globalization;
using System.Text.Json;
using TransferSharp.Vision.Graph;

namespace TransferSharp.Text.Transformers;

/// <summary>
/// The parts of a Hugging Face BERT <c>config.json</c> that fix the encoder's architecture (BERT, MiniLM, BGE, E5 and
/// the other WordPiece encoders of <c>BertModel</c>'s shape). Keys a file leaves out take <c>BertConfig</c>'s defaults.
/// </summary>
public sealed record BertConfig(int VocabSize = 30522, int HiddenSize = 768, int NumHiddenLayers = 12, int NumAttentionHeads = 12,
    int IntermediateSize = 3072, string HiddenAct = "gelu", int MaxPositionEmbeddings = 512, int TypeVocabSize = 2,
    double LayerNormEps = 1e-12, double HiddenDropoutProb = 0.1)
{
    /// <summary>The activation of the feed-forward block: "gelu" (erf), "gelu_new" and "gelu_pytorch_tanh" (tanh
    /// approximation), "relu".</summary>
    public ActivationKind Activation => HiddenAct switch
    {
        "gelu" => ActivationKind.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" => ActivationKind.GeluTanh,
        "relu" => ActivationKind.Relu,
        _ => throw new InvalidOptionException(nameof(HiddenAct), $"hidden_act '{HiddenAct}' is not one of gelu, gelu_new, gelu_pytorch_tanh, relu"),
    };

    /// <summary>Reads a <c>config.json</c>. A missing or malformed file, a key of the wrong type, an activation or a
    /// position embedding type the family does not build, or sizes that do not fit together raise an
    /// <see cref="InvalidFileException"/> naming the file and the key.</summary>
    public static BertConfig Read(string path)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            root = doc.RootElement.Clone();
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidFileException(path, $"not a readable JSON config: {e.Message}", e);
        }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidFileException(path, "is not a JSON object");
        var d = new BertConfig();
        int Int(string key, int fallback)
        {
            if (!root.TryGetProperty(key, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i) || i <= 0)
                throw new InvalidFileException(path, $"'{key}' is {v.GetRawText()}, not a positive integer");
            return i;
        }
        double Real(string key, double fallback)
        {
            if (!root.TryGetProperty(key, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Number) throw new InvalidFileException(path, $"'{key}' is {v.GetRawText()}, not a number");
            return v.GetDouble();
        }
        string Text(string key, string fallback)
        {
            if (!root.TryGetProperty(key, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.String) throw new InvalidFileException(path, $"'{key}' is {v.GetRawText()}, not a string");
            return v.GetString()!;
        }
        var config = new BertConfig(Int("vocab_size", d.VocabSize), Int("hidden_size", d.HiddenSize), Int("num_hidden_layers", d.NumHiddenLayers),
            Int("num_attention_heads", d.NumAttentionHeads), Int("intermediate_size", d.IntermediateSize), Text("hidden_act", d.HiddenAct),
            Int("max_position_embeddings", d.MaxPositionEmbeddings), Int("type_vocab_size", d.TypeVocabSize),
            Real("layer_norm_eps", d.LayerNormEps), Real("hidden_dropout_prob", d.HiddenDropoutProb));
        if (Text("position_embedding_type", "absolute") is var positions && positions != "absolute")
            throw new InvalidFileException(path, $"'position_embedding_type' is '{positions}'; the BERT family builds absolute position embeddings only");
        try
        {
            config.Validate();
        }
        catch (InvalidOptionException e)
        {
            throw new InvalidFileException(path, e.Message, e);
        }
        return config;
    }

    /// <summary>Checks that the sizes fit together; raises <see cref="InvalidOptionException"/> naming the setting.</summary>
    public void Validate()
    {
        _ = Activation;
        if (HiddenSize % NumAttentionHeads != 0)
            throw new InvalidOptionException(nameof(NumAttentionHeads), $"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (LayerNormEps is <= 0 or > 1) throw new InvalidOptionException(nameof(LayerNormEps), $"layer_norm_eps {LayerNormEps} is not in (0, 1]");
        if (HiddenDropoutProb is < 0 or >= 1) throw new InvalidOptionException(nameof(HiddenDropoutProb), $"hidden_dropout_prob {HiddenDropoutProb} is not in [0, 1)");
    }
}

/// <summary>
/// BERT-family text encoders (Devlin et al. 2018) as Hugging Face's <c>BertModel</c> builds them, with its state-dict
/// names: word, position and token-type embeddings summed and normalised; layers of self-attention (separate query, key
/// and value projections, the padding keys masked by <c>attention_mask</c>) and a GELU feed-forward block, each with a
/// residual connection and a post-norm; a pooler (the first token through a linear layer and tanh). The main input is
/// the token ids [N, T] (int64); <see cref="AttentionMask"/> and <see cref="TokenTypeIds"/> are inputs of the same
/// shape. The output, and the feature node, is the last hidden state [N, T, hidden]; T may be any length up to
/// <c>max_position_embeddings</c>.
/// </summary>
public static class Bert
{
    /// <summary>The input holding 1 for tokens and 0 for padding.</summary>
    public const string AttentionMask = "attention_mask";

    /// <summary>The input holding each token's segment (0, or 1 for the second sentence of a pair).</summary>
    public const string TokenTypeIds = "token_type_ids";

    /// <summary>The node computing the pooler's output [N, hidden] (tanh of a linear layer on the first token).</summary>
    public const string PoolerOutput = "pooler.activation";

    /// <summary>The encoder graph for <paramref name="config"/>, built at [1, <paramref name="sequenceLength"/>].</summary>
    public static ModelGraph Build(BertConfig config, string name = "bert", int sequenceLength = 128)
    {
        config.Validate();
        if (sequenceLength < 1 || sequenceLength > config.MaxPositionEmbeddings)
            throw new InvalidOptionException(nameof(sequenceLength), $"sequence length {sequenceLength} is not in 1 … max_position_embeddings {config.MaxPositionEmbeddings}");
        int h = config.HiddenSize;
        long[] tokens = [1, sequenceLength];
        var b = new GraphBuilder(name, tokens, ElementType.Int64);
        var mask = b.AddInput(AttentionMask, tokens, ElementType.Int64);
        var types = b.AddInput(TokenTypeIds, tokens, ElementType.Int64);
        var norm = new LayerNormOp(h, config.LayerNormEps);
        Sym x;
        using (b.Scope("embeddings"))
        {
            var words = b.Add(new EmbeddingOp(config.VocabSize, h), "word_embeddings", b.Input);
            var segments = b.Add(new EmbeddingOp(config.TypeVocabSize, h), "token_type_embeddings", types);
            var positions = b.Add(new EmbeddingOp(config.MaxPositionEmbeddings, h, Positions: true), "position_embeddings", b.Input);
            // (words + token types) + positions, Hugging Face's order of float additions.
            x = b.Add(norm, "LayerNorm", b.Sum("sum", words, segments, positions));
            x = b.Dropout(x, config.HiddenDropoutProb, "dropout");
        }
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            using var layer = b.Scope($"encoder.layer.{i}");
            Sym attended;
            using (b.Scope("attention"))
            {
                Sym context;
                using (b.Scope("self"))
                {
                    var qkv = b.Add(new ConcatOp(2), "qkv", b.Linear(x, "query", h), b.Linear(x, "key", h), b.Linear(x, "value", h));
                    context = b.Add(new SelfAttentionOp(config.NumAttentionHeads), "attend", qkv, mask);
                }
                attended = Residual(b, context, x, h, norm, config.HiddenDropoutProb);
            }
            var inner = b.Act(b.Linear(attended, "intermediate.dense", config.IntermediateSize), config.Activation, "intermediate.act");
            x = Residual(b, inner, attended, h, norm, config.HiddenDropoutProb);
        }
        b.Features(x);
        using (b.Scope("pooler"))
        {
            var first = b.Add(new TokenPoolOp(TokenPoolKind.Class), "first_token", x);
            b.Act(b.Linear(first, "dense", h), ActivationKind.Tanh, "activation");
        }
        b.Group("embeddings", "embeddings");
        for (int i = 0; i < config.NumHiddenLayers; i++) b.Group($"layer{i}", $"encoder.layer.{i}");
        b.Group("pooler", "pooler");
        return b.Build(x);
    }

    /// <summary>BertSelfOutput and BertOutput: a dense layer, dropout, the residual added, LayerNorm — under "output".</summary>
    private static Sym Residual(GraphBuilder b, Sym x, Sym residual, int h, LayerNormOp norm, double dropout)
    {
        using var _ = b.Scope("output");
        var y = b.Dropout(b.Linear(x, "dense", h), dropout, "dropout");
        return b.Add(norm, "LayerNorm", b.Sum("residual", y, residual));
    }

    /// <summary>The encoder for the <c>config.json</c> at <paramref name="configPath"/>, with fresh weights.</summary>
    public static GraphModule Create(string configPath, int sequenceLength = 128) =>
        new(Build(BertConfig.Read(configPath), Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(configPath))) is { Length: > 0 } dir ? dir : "bert", sequenceLength));

    /// <summary>The weight files of a Hugging Face folder, in the order they are looked for.</summary>
    public static IReadOnlyList<string> WeightFiles { get; } = ["model.safetensors", "pytorch_model.bin"];

    /// <summary>
    /// A pretrained encoder from a Hugging Face model folder: <c>config.json</c> and <c>model.safetensors</c> (or
    /// <c>pytorch_model.bin</c>, read by the weights-only unpickler), loaded strictly by name. Checkpoints of a model with
    /// a task head (<c>BertForSequenceClassification</c>) name the encoder's tensors under "bert."; those are taken and
    /// the head's are left out. Returned in eval mode.
    /// </summary>
    public static GraphModule Load(string folder, int sequenceLength = 128)
    {
        folder = Path.GetFullPath(folder);
        var configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new InvalidFileException(folder, "holds no config.json: not a Hugging Face model folder");
        var weightsPath = WeightFiles.Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists)
            ?? throw new InvalidFileException(folder, $"holds no weights ({string.Join(" or ", WeightFiles)})");
        var model = Create(configPath, sequenceLength);
        try
        {
            using var state = Weights.Checkpoint.Read(weightsPath);
            const string prefix = "bert.";
            bool nested = state.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
            var encoder = nested
                ? state.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal)
                : state.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            LoadState(model, encoder, weightsPath, configPath);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>Copies a Hugging Face <c>BertModel</c> state dict (strictly: every tensor by name and shape; the
    /// <c>embeddings.position_ids</c> buffer older checkpoints carry is not a weight and is left out) into an encoder
    /// built from <paramref name="configPath"/>. A config that does not match the weights raises an
    /// <see cref="InvalidFileException"/> naming the config, the weights and the tensors that differ.</summary>
    public static LoadReport LoadState(GraphModule model, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> state, string weightsSource, string configPath)
    {
        var weights = state.Where(kv => kv.Key != "embeddings.position_ids").Select(kv => (kv.Key, kv.Value));
        try
        {
            return StateLoader.Load(model, weights, LoadPolicy.Strict, weightsSource);
        }
        catch (StateDictMismatchException e)
        {
            throw new InvalidFileException(configPath, string.Create(CultureInfo.InvariantCulture,
                $"does not match the weights {weightsSource}: {e.Report.DescribeProblems()}"), e);
        }
    }
}
