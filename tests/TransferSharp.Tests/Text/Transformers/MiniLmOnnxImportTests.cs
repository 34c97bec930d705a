using TorchSharp;
using TransferSharp.Vision.Graph;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Text.Transformers;

/// <summary>
/// Issue 16 item 2: the all-MiniLM-L6-v2 ONNX file imported as a trainable graph — int64 token inputs, embedding
/// Gathers, the attention-mask arithmetic, LayerNorm written as primitives, Erf GELU, shape chains with a dynamic
/// sequence length — equals ONNX Runtime on the same file at several lengths with padding, and trains.
/// </summary>
[Trait("Category", "Parity")]
public sealed class MiniLmOnnxImportTests(MiniLmFixture fx, ITestOutputHelper output) : IClassFixture<MiniLmFixture>
{
    [Fact]
    public void Imported_graph_has_token_inputs_and_hugging_face_names()
    {
        var graph = fx.Imported.Graph;
        Assert.Equal(ElementType.Int64, graph.InputType);
        Assert.Equal(["attention_mask", "token_type_ids"], graph.ExtraInputs.Select(i => i.Name));
        Assert.All(graph.ExtraInputs, i => Assert.Equal(ElementType.Int64, i.Type));
        Assert.Equal("input_ids", fx.Imported.OnnxInput);
        var names = fx.Imported.StateNames.ToHashSet();
        // Linear weights stored transposed under anonymous names take their module's path from the bias added after them;
        // LayerNorms written as primitives become LayerNorm layers named after their weight.
        foreach (var key in new[]
        {
            "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", "encoder.layer.0.attention.self.query.weight",
            "encoder.layer.5.attention.output.dense.weight", "encoder.layer.3.intermediate.dense.weight",
            "encoder.layer.2.output.LayerNorm.bias", "pooler.dense.weight",
        })
            Assert.Contains(key, names);
        Assert.Equal(6 * 16 + 5 + 2, names.Count);
        Assert.Equal(6, graph.Nodes.Count(n => n.Op is UnaryOp { Function: UnaryKind.Erf }));
        Assert.Equal(13, graph.Nodes.Count(n => n.Op is LayerNormOp));
    }

    [Fact]
    public void Imported_graph_equals_onnx_runtime_at_several_lengths_with_padding()
    {
        using var model = fx.Imported.CreateModule();
        using var exact = fx.Imported.CreateModule();
        exact.to(ScalarType.Float64);
        fx.AssertEqualsOnnxRuntime(model, exact, [fx.LastHiddenState, model.Graph.Output], output);
    }

    [Fact]
    public void Imported_graph_trains()
    {
        using var model = fx.Imported.CreateModule();
        model.train();
        var watched = new[] { "encoder.layer.0.attention.self.query.weight", "encoder.layer.5.output.LayerNorm.weight", "embeddings.word_embeddings.weight" };
        var state = model.state_dict();
        var before = watched.Select(k => state[k].detach().clone()).ToArray();
        using (var scope = NewDisposeScope())
        {
            var batch = MiniLmFixture.Batches[1];
            var hidden = model.Run(batch.Feeds(), [fx.LastHiddenState])[0];
            var loss = hidden.pow(2).mean();
            loss.backward();
            using var sgd = optim.SGD(model.parameters(), 0.5);
            sgd.step();
        }
        for (int i = 0; i < watched.Length; i++)
        {
            double change = (state[watched[i]] - before[i]).abs().max().item<float>();
            Assert.True(change > 0, $"{watched[i]} did not change in a gradient step");
            before[i].Dispose();
        }
    }
}
