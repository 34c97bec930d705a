namespace TransferSharp.Vision.Graph;

/// <summary>Reshape to a fixed shape; 0 copies the input's dimension, -1 is inferred (ONNX rules).</summary>
public sealed record ReshapeOp(long[] Shape) : Op
{
    /// <inheritdoc />
    public override bool OutputMayAlias => true;

    /// <inheritdoc />
    public override long[] InferShape(IReadOnlyList<long[]> inputs) => Resolve(inputs[0]);

    internal long[] Resolve(long[] x)
    {
        var o = (long[])Shape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < o.Length; i++)
        {
            if (o[i] == 0) o[i] = i < x.Length ? x[i] : throw Bad("Reshape: 0 refers past the input's rank");
            if (o[i] == -1) { if (infer >= 0) throw Bad("Reshape: more than one -1"); infer = i; }
            else known *= o[i];
        }
        long total = Numel(x);
        if (infer >= 0)
        {
            if (known == 0 || total % known != 0) throw Bad($"Reshape: cannot reshape [{string.Join(",", x)}] to [{string.Join(",", Shape)}]");
            o[infer] = total / known;
        }
        else if (known != total) throw Bad($"Reshape: [{string.Join(",", x)}] has {total} elements, target [{string.Join(",", Shape)}] has {known}");
        return o;
    }

    internal override void ExportOnnx(OnnxExportContext onnx) =>
        onnx.Out("Reshape", [onnx.Inputs[0], onnx.Ints(onnx.Node.Name + ".shape", Shape)]);

    /// <summary>The ONNX operators imported as this op.</summary>
    internal static readonly (string OpType, OnnxImportTranslator Translate)[] OnnxImports = [("Reshape", ImportOnnx)];

    private static void ImportOnnx(OnnxImportContext onnx)
    {
        var target = onnx.Constant(1, "shape"); // opset ≥ 5 (the importer reads 7–21): the shape is an input
        var shape = target.AsInts();
        if (onnx.Int("allowzero", 0) != 0 && shape.Contains(0)) throw onnx.Unsupported("allowzero with a zero in the shape");
        if (onnx.IsConstant(0))
        {
            onnx.Fold(new ReshapeOp(shape));
            return;
        }
        var x = onnx.Value(0);
        // Elements that came from the batch size stay dynamic: copy it at position 0, infer it elsewhere. A text model's
        // sequence length is copied where the input has it at the same position (BERT's [N, T, C] ↔ [N, T, heads, C / heads]),
        // else inferred.
        for (int i = 0; i < shape.Length; i++)
        {
            switch (target.MarkOf(i))
            {
                case DimMark.Batch:
                    if (i == 0) shape[i] = 0;
                    else if (!shape.Contains(-1)) shape[i] = -1;
                    break;
                case DimMark.Sequence:
                    if (i > 0 && i < x.Shape.Length && x.Shape[i] == shape[i]) shape[i] = 0;
                    else if (!shape.Contains(-1)) shape[i] = -1;
                    else throw onnx.Unsupported($"a Reshape to [{string.Join(",", target.AsInts())}] whose sequence length can be neither copied nor inferred");
                    break;
            }
        }
        onnx.Emit(onnx.Add(new ReshapeOp(shape), onnx.NodeName(), x));
    }

    /// <inheritdoc />
    public override Layer CreateLayer() => new FunctionalLayer(this, xs =>
    {
        // The batch dimension may differ from the shape the graph was built for.
        var x = xs[0];
        var target = (long[])Shape.Clone();
        for (int i = 0; i < target.Length; i++) if (target[i] == 0) target[i] = x.shape[i];
        return x.reshape(target);
    });

    /// <inheritdoc />
    public bool Equals(ReshapeOp? other) => other is not null && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => Shape.Length;

    /// <inheritdoc />
    public override string Describe() => $"[{string.Join(",", Shape)}]";
}
