namespace TransferSharp.Vision.Graph;

/// <summary>Translates one ONNX node into IR ops through <see cref="OnnxImportContext"/>.</summary>
internal delegate void OnnxImportTranslator(OnnxImportContext onnx);

/// <summary>
/// What an op's import translator sees while it reads one ONNX node (the counterpart of
/// <see cref="OnnxExportContext"/>): the node's attributes, its inputs as graph values or import-time constants, the
/// opset, and the means to add IR ops with their state, alias an input, hand constant inputs back to the importer to
/// fold, or refuse a variant. The ONNX importer implements it and keeps the file-level work (initializers, naming,
/// constants, landmarks); the op says only how its ONNX operators map to it.
/// </summary>
internal abstract class OnnxImportContext
{
    /// <summary>The opset of the default domain being read.</summary>
    public abstract int Opset { get; }

    /// <summary>The ONNX operator type of the node.</summary>
    public abstract string OpType { get; }

    /// <summary>How many inputs the node lists (some may be empty, i.e. omitted).</summary>
    public abstract int InputCount { get; }

    /// <summary>Whether input <paramref name="i"/> is given.</summary>
    public abstract bool Has(int i);

    /// <summary>Whether input <paramref name="i"/> is given and known at import time.</summary>
    public abstract bool IsConstant(int i);

    /// <summary>Input <paramref name="i"/> as an import-time constant; refuses (as an unsupported variant naming
    /// <paramref name="what"/>) one that is missing or computed at run time.</summary>
    public abstract ConstTensor Constant(int i, string what);

    /// <summary>Input <paramref name="i"/> as a graph value; a constant becomes a node holding it.</summary>
    public abstract Sym Value(int i);

    /// <summary>Whether the node carries attribute <paramref name="name"/>.</summary>
    public abstract bool HasAttribute(string name);

    /// <summary>An integer attribute, or <paramref name="fallback"/>.</summary>
    public abstract long Int(string name, long fallback);

    /// <summary>A float attribute, or <paramref name="fallback"/>.</summary>
    public abstract float Float(string name, float fallback);

    /// <summary>An integer-list attribute, or null.</summary>
    public abstract long[]? Ints(string name);

    /// <summary>A float-list attribute, or null.</summary>
    public abstract double[]? FloatList(string name);

    /// <summary>A string attribute, or null.</summary>
    public abstract string? String(string name);

    /// <summary>A fresh graph-node name for the node: the module path when input <paramref name="weightInput"/> is
    /// named like a PyTorch parameter ("layer1.0.conv1.weight"), else the sanitised ONNX node name.</summary>
    public abstract string NodeName(int weightInput = -1);

    /// <summary>A fresh name for a helper node beside <paramref name="baseName"/>.</summary>
    public abstract string Extra(string baseName, string suffix);

    /// <summary>Adds an IR op reading <paramref name="inputs"/>.</summary>
    public abstract Sym Add(Op op, string name, params Sym[] inputs);

    /// <summary>Adds an IR op reading <paramref name="input"/> whose state (weight, bias, …) is
    /// <paramref name="state"/>, keyed by the op's parameter names.</summary>
    public abstract Sym AddWithState(Op op, string name, Sym input, params (string Parameter, ConstTensor Value)[] state);

    /// <summary>When input <paramref name="input"/> is the output of a bias-less <see cref="LinearOp"/> that only this node
    /// reads (PyTorch and our exporter write a Linear on [N, …, C] as MatMul then Add), gives that layer
    /// <paramref name="bias"/> as its trainable bias and returns true; the caller then aliases its output to the input.</summary>
    public abstract bool TryAddLinearBias(int input, ConstTensor bias);

    /// <summary>States that ONNX output <paramref name="output"/> of the node is <paramref name="value"/>.</summary>
    public abstract void Emit(Sym value, int output = 0);

    /// <summary>The node's output is its input <paramref name="input"/> (value or constant) unchanged.</summary>
    public abstract void Alias(int input = 0);

    /// <summary>Every data input is constant: the importer computes <paramref name="op"/> on them at import time
    /// (its constant folding) instead of adding a node.</summary>
    public abstract void Fold(Op op);

    /// <summary>Refuses the node when one of its outputs from <paramref name="from"/> on is read.</summary>
    public abstract void RequireUnusedOutputs(int from);

    /// <summary>The error for a variant of the operator the importer does not translate.</summary>
    public abstract Exception Unsupported(string reason);

    /// <summary>The error for a node that contradicts itself or the ONNX specification.</summary>
    public abstract Exception Malformed(string detail);

    /// <summary>Input <paramref name="i"/> as a constant when it is given, else null.</summary>
    public ConstTensor? OptionalConstant(int i, string what) => Has(i) ? Constant(i, what) : null;

    /// <summary>The common case: one IR op on the first input, named after the node.</summary>
    public void Out(Op op) => Emit(Add(op, NodeName(), Value(0)));

    /// <summary>A possibly negative ONNX axis as an index into a rank-<paramref name="rank"/> shape.</summary>
    public static int Norm(long axis, int rank) => (int)(axis < 0 ? axis + rank : axis);

    /// <summary>A window's padding from auto_pad or pads (2-D windows only).</summary>
    public PadSpec Padding(int rank)
    {
        var autoPad = String("auto_pad") ?? "NOTSET";
        switch (autoPad)
        {
            case "SAME_UPPER": return new PadSpec(PadKind.SameUpper);
            case "SAME_LOWER": return new PadSpec(PadKind.SameLower);
            case "VALID": return PadSpec.None;
            case "NOTSET" or "": break;
            default: throw Unsupported($"auto_pad '{autoPad}'");
        }
        var pads = Ints("pads") ?? new long[2 * rank];
        if (pads.Length != 4) throw Unsupported($"pads of length {pads.Length}; only 2-D windows are supported");
        if (pads.Any(p => p < 0)) throw Unsupported("negative pads");
        return new PadSpec(PadKind.Explicit, (int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]);
    }

    /// <summary>A 2-D window attribute (kernel_shape, strides, dilations, …), or <paramref name="fallback"/> twice.</summary>
    public Size2 Pair(long[]? v, int fallback, string what)
    {
        if (v is null) return new Size2(fallback, fallback);
        if (v.Length != 2) throw Unsupported($"{what} of length {v.Length}; only 2-D windows are supported");
        return new Size2((int)v[0], (int)v[1]);
    }
}
