using TransferSharp.Text.Transformers.Tokenization;
using static TorchSharp.torch;

namespace TransferSharp.Text.Transformers;

/// <summary>
/// Another runtime for a <see cref="TextEncoder"/>'s inference forward pass (its <see cref="TextEncoder.Encode"/>): maps a
/// tokenized batch to the encoder's last hidden state, which the encoder then pools and normalises itself, so batching,
/// truncation, pooling and normalisation stay one implementation. ONNX Runtime is one (TransferSharp.OnnxRuntime's
/// <c>OnnxRuntimeEngine</c>, on the encoder's graph exported to ONNX). An engine runs the weights it was built from:
/// after the encoder's weights change (fine-tuning, loading), build it again. Training and
/// <see cref="TextEncoder.Forward(TokenizedBatch)"/> always run the TorchSharp graph.
/// </summary>
public interface ITextInferenceEngine : IDisposable
{
    /// <summary>A short name for reports ("onnxruntime").</summary>
    string EngineName { get; }

    /// <summary>The last hidden state [N, T, hidden] (float32, CPU) for token ids, attention mask and token types, each
    /// int64 [N, T] on the CPU; the caller owns the result. An engine whose model has no token-type input ignores
    /// <paramref name="tokenTypeIds"/>.</summary>
    Tensor LastHiddenState(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds);
}
