using static TorchSharp.torch;
using static TransferSharp.Vision.Graph.OnnxAttribute;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// A lookup in a learned table of <paramref name="Count"/> rows of <paramref name="Dim"/> values (PyTorch's
/// <c>nn.Embedding(Count, Dim)</c>, state "weight" [Count, Dim]): integer indices of any shape [N, …] become
/// [N, …, Dim] — a text encoder's word and token-type embeddings. With <paramref name="Positions"/> the indices are
/// the positions 0 … T − 1 of the input [N, T, …], which is read only for its length T: the output [1, T, Dim] is
/// the first T rows (BERT's absolute position embeddings, added to the word embeddings by broadcasting).
/// </summary>
public sealed record EmbeddingOp(int Count, int Dim, bool Positions = false) : Op
{
    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs)
    {
        var x = inputs[0];
        if (Count < 1 || Dim < 1) throw Bad($"{Kind}: a table of {Count} × {Dim} is empty");
        if (!Positions) return [.. x, Dim];
        if (x.Length < 2) throw Bad($"{Kind} of positions expects an input [N, T, …], got shape [{string.Join(",", x)}]");
        if (x[1] > Count) throw Bad($"{Kind}: {x[1]} positions exceed the table's {Count}");
        return [1, x[1], Dim];
    }

    /// <inheritdoc />
    public override IReadOnlyList<ParameterShape> ParameterShapes => [new("weight", [Count, Dim])];

    /// <inheritdoc />
    public override Layer CreateLayer() => new EmbeddingLayer(this);

    /// <summary>ONNX Gather on the table. Positions are written as Hugging Face's exporter writes them (a position-id
    /// table [1, Count] sliced to the input's length, then gathered), so that the importer reads them back as this op.</summary>
    internal override void ExportOnnx(OnnxExportContext onnx)
    {
        var name = onnx.Node.Name;
        var weight = onnx.Initializer(name + ".weight", onnx.Parameter("weight"));
        if (!Positions)
        {
            onnx.Out("Gather", [weight, onnx.Inputs[0]], Attr("axis", 0L));
            return;
        }
        var ids = onnx.Emit("Unsqueeze", [onnx.Ints(name + ".positions", Enumerable.Range(0, Count).Select(i => (long)i).ToArray()), onnx.Ints(name + ".positions_axes", 0)],
            onnx.Fresh(name + "_position_ids"));
        var shape = onnx.Emit("Shape", [onnx.Inputs[0]], onnx.Fresh(name + "_shape"));
        var length = onnx.Emit("Slice", [shape, onnx.Ints(name + ".length_start", 1), onnx.Ints(name + ".length_end", 2)], onnx.Fresh(name + "_length"));
        var used = onnx.Emit("Slice", [ids, onnx.Ints(name + ".start", 0), length, onnx.Ints(name + ".axes", 1)], onnx.Fresh(name + "_used_ids"));
        onnx.Out("Gather", [weight, used], Attr("axis", 0L));
    }

    /// <inheritdoc />
    public override string Describe() => $"{Count} × {Dim}" + (Positions ? ", positions" : "");
}

/// <summary>Looks rows up in the table (normal(0, 1) as PyTorch's <c>nn.Embedding</c> draws it, until loaded).</summary>
public sealed class EmbeddingLayer : Layer
{
    private readonly EmbeddingOp _op;

    /// <summary>Creates the layer.</summary>
    public EmbeddingLayer(EmbeddingOp op) : base(op)
    {
        _op = op;
        RegisterDeclared(p => empty(p.Shape));
    }

    internal override void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        get_parameter("weight")!.normal_(0, 1, generator);
    }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var weight = get_parameter("weight")!;
        var x = inputs[0];
        if (_op.Positions) return weight.narrow(0, 0, x.shape[1]).unsqueeze(0);
        if (x.is_floating_point())
            throw new GraphException($"{_op.Kind} reads integer indices, got a {x.dtype} tensor: feed token ids as int64");
        using var flat = x.flatten();
        using var rows = weight.index_select(0, flat);
        return rows.reshape([.. x.shape, _op.Dim]);
    }
}
