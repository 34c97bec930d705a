using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;
using OnnxProto = global::Onnx;
using PreprocessingRecord = TransferSharp.Vision.Preprocessing.Preprocessing;
using TransferSharp.IO;

namespace TransferSharp.Onnx;

/// <summary>How to export a graph to ONNX.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Opset of the default domain, 13–21 (default 17).</summary>
    public int Opset { get; init; } = OnnxExporter.DefaultOpset;

    /// <summary>Name of the image input.</summary>
    public string InputName { get; init; } = "input";

    /// <summary>Name of the main output (default "logits" when the graph has a classifier, else "output").</summary>
    public string? OutputName { get; init; }

    /// <summary>End a classifier's main output with a softmax over the classes (probabilities instead of logits;
    /// no effect on a graph without a classifier).</summary>
    public bool Probabilities { get; init; }

    /// <summary>Also output the pooled features [N, F] as "features" (when the graph marks a feature node).</summary>
    public bool IncludeFeatures { get; init; } = true;

    /// <summary>Leave the batch dimension dynamic (default) or fix it to the graph's.</summary>
    public bool DynamicBatch { get; init; } = true;

    /// <summary>The eval transform to record in metadata_props ("transfersharp.preprocessing", JSON).</summary>
    public PreprocessingRecord? Preprocessing { get; init; }

    /// <summary>Class names of the outputs, recorded in metadata_props ("transfersharp.labels", JSON array).</summary>
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>Further metadata_props entries.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>
/// Writes any <see cref="GraphModule"/> (zoo, imported, fine-tuned) as an ONNX model that ONNX Runtime
/// runs with the same results: weights as initializers (StdConv2d with its standardised weight
/// folded in, dropout as identity), a dynamic batch dimension, a named input and output, the pooled
/// features as a second output, and the preprocessing in metadata_props. The file is written to a
/// temporary name and renamed when complete.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The default opset.</summary>
    public const int DefaultOpset = 17;

    /// <summary>Lowest opset the exporter writes.</summary>
    public const int MinOpset = 13;

    /// <summary>Highest opset the exporter writes.</summary>
    public const int MaxOpset = 21;

    /// <summary>Name of the pooled-features output.</summary>
    public const string FeaturesOutputName = "features";

    /// <summary>metadata_props key holding the preprocessing as JSON.</summary>
    public const string PreprocessingKey = "transfersharp.preprocessing";

    /// <summary>metadata_props key naming the exported graph; its presence marks a file TransferSharp wrote.</summary>
    public const string ModelKey = "transfersharp.model";

    /// <summary>metadata_props key stating how many classes the main output scores ("0": it is features, no classifier).</summary>
    public const string NumClassesKey = "transfersharp.num_classes";

    /// <summary>The number of classes a file written by <see cref="Export"/> states, or null for other files
    /// (files of earlier versions: a TransferSharp model whose main output is named "output" has none).</summary>
    public static int? ReadNumClasses(IReadOnlyDictionary<string, string> metadata, string mainOutputName) =>
        metadata.TryGetValue(NumClassesKey, out var n) && int.TryParse(n, out int classes) ? classes
        : metadata.ContainsKey(ModelKey) && mainOutputName == "output" ? 0 : null;

    /// <summary>metadata_props key naming the main output, the one <see cref="NumClassesKey"/> speaks of.</summary>
    public const string MainOutputKey = "transfersharp.main_output";

    /// <summary>The number of classes the output <paramref name="outputName"/> of a file written by <see cref="Export"/> scores
    /// (0 for its features output), or null for any other file.</summary>
    internal static int? StatedClasses(IReadOnlyDictionary<string, string> metadata, string outputName)
    {
        bool main = metadata.TryGetValue(MainOutputKey, out var m) ? m == outputName : outputName != FeaturesOutputName;
        return main ? ReadNumClasses(metadata, outputName) : metadata.ContainsKey(ModelKey) ? 0 : null;
    }

    /// <summary>metadata_props key holding the class names as a JSON array.</summary>
    public const string LabelsKey = "transfersharp.labels";

    private static readonly JsonSerializerOptions _json = new()
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    /// <summary>Exports the module (its current weights, eval semantics) to <paramref name="path"/>.</summary>
    public static void Export(GraphModule module, string path, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        var model = Build(module, options);
        AtomicFile.Write(path, model.WriteTo);
    }

    /// <summary>Exports the module to ONNX bytes in memory (the same model <see cref="Export"/> writes), for hosts
    /// that take a model as a stream (ONNX Runtime sessions, ML.NET's <c>ApplyOnnxModel</c>).</summary>
    public static byte[] ExportToBytes(GraphModule module, OnnxExportOptions? options = null) =>
        Build(module, options ?? new OnnxExportOptions()).ToByteArray();

    /// <summary>The preprocessing recorded by <see cref="Export"/>, or null; a value that does not parse is an <see cref="OnnxException"/> naming <paramref name="file"/>.</summary>
    public static PreprocessingRecord? ReadPreprocessing(IReadOnlyDictionary<string, string> metadata, string file = "ONNX metadata") =>
        metadata.TryGetValue(PreprocessingKey, out var json) ? ReadMetadata(file, PreprocessingKey, () => JsonSerializer.Deserialize<PreprocessingRecord>(json, _json)) : null;

    /// <summary>The class names recorded by <see cref="Export"/>, or an empty list; a value that does not parse is an <see cref="OnnxException"/> naming <paramref name="file"/>.</summary>
    public static IReadOnlyList<string> ReadLabels(IReadOnlyDictionary<string, string> metadata, string file = "ONNX metadata") =>
        metadata.TryGetValue(LabelsKey, out var json) ? ReadMetadata(file, LabelsKey, () => JsonSerializer.Deserialize<string[]>(json)) ?? [] : [];

    /// <summary>Metadata JSON from a file is data from anywhere: a value that does not parse names the file and the key.</summary>
    private static T? ReadMetadata<T>(string file, string key, Func<T?> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new OnnxException(file, $"metadata '{key}' is not valid: {e.Message}", e);
        }
    }

    internal static OnnxProto.ModelProto Build(GraphModule module, OnnxExportOptions options)
    {
        if (options.Opset < MinOpset || options.Opset > MaxOpset)
            throw new InvalidOptionException("Opset", $"opset {options.Opset}: the exporter writes opsets {MinOpset}–{MaxOpset}");
        var writer = new Writer(module, options);
        var graph = writer.Run();
        var model = new OnnxProto.ModelProto
        {
            IrVersion = options.Opset <= 14 ? 7 : options.Opset <= 18 ? 8 : options.Opset <= 20 ? 9 : 10,
            ProducerName = "TransferSharp",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString(3) ?? "0",
            Graph = graph,
        };
        model.OpsetImport.Add(new OnnxProto.OperatorSetIdProto { Domain = "", Version = options.Opset });
        void Meta(string k, string v) => model.MetadataProps.Add(new OnnxProto.StringStringEntryProto { Key = k, Value = v });
        Meta(ModelKey, module.Graph.Name);
        if (module.Graph.FeatureNode is { } f) Meta("transfersharp.feature_node", f);
        Meta(NumClassesKey, module.Graph.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Meta(MainOutputKey, MainOutputName(module.Graph, options));
        if (options.Preprocessing is { } p) Meta(PreprocessingKey, JsonSerializer.Serialize(p, _json));
        if (options.Labels is { Count: > 0 } labels) Meta(LabelsKey, JsonSerializer.Serialize(labels));
        if (options.Metadata is { } extra) foreach (var (k, v) in extra) Meta(k, v);
        return model;
    }

    /// <summary>The name the main output of <paramref name="graph"/> gets: <see cref="OnnxExportOptions.OutputName"/>, else
    /// "logits" when the graph has a classifier and "output" when it does not.</summary>
    public static string MainOutputName(ModelGraph graph, OnnxExportOptions? options = null) =>
        options?.OutputName ?? (graph.ClassifierNode is not null ? "logits" : "output");

    /// <summary>Emits nodes and initializers for one graph.</summary>
    private sealed class Writer
    {
        private readonly GraphModule _module;
        private readonly ModelGraph _graph;
        private readonly OnnxExportOptions _o;
        private readonly OnnxProto.GraphProto _g = new();
        private readonly Dictionary<string, string> _tensor = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _state;
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly int _opset;
        private string _current = "";

        public Writer(GraphModule module, OnnxExportOptions options)
        {
            _module = module;
            _graph = module.Graph;
            _o = options;
            _opset = options.Opset;
            _state = module.state_dict();
        }

        public OnnxProto.GraphProto Run()
        {
            _g.Name = _graph.Name;
            _tensor[ModelGraph.InputName] = _o.InputName;
            _names.Add(_o.InputName);
            var outputName = MainOutputName(_graph, _o);
            if (!_names.Add(outputName) || !_names.Add(FeaturesOutputName))
                throw new ArgumentException($"input and output names must differ ('{_o.InputName}', '{outputName}', '{FeaturesOutputName}')");
            var shapes = _graph.Shapes;
            var needed = _graph.Needed([_graph.Output, .. _graph.FeatureNode is { } f && _o.IncludeFeatures ? new[] { f } : []]);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var i in needed)
            {
                var node = _graph.Nodes[i];
                _current = node.Name;
                try
                {
                    Emit(node, node.Inputs.Select(n => _tensor[n]).ToArray(), node.Inputs.Select(n => shapes[n]).ToArray(), shapes[node.Name]);
                }
                catch (NotSupportedException e)
                {
                    throw new TransferSharpException($"graph '{_graph.Name}', node '{node.Name}' ({node.Op.Kind}): {e.Message}", e);
                }
            }
            _current = "";
            var main = _tensor[_graph.Output];
            if (_o.Probabilities && _graph.ClassifierNode is not null) main = Node("Softmax", [main], Fresh("probabilities"), A("axis", 1));
            Node("Identity", [main], outputName);
            AddValueInfo(_g.Input, _o.InputName, _graph.InputShape);
            AddValueInfo(_g.Output, outputName, shapes[_graph.Output]);
            if (_o.IncludeFeatures && _graph.FeatureNode is { } feature)
            {
                var fs = shapes[feature];
                string pooled = _tensor[feature];
                if (fs.Length > 2)
                {
                    pooled = Node("GlobalAveragePool", [pooled], Fresh("features_pool"));
                    pooled = Node("Flatten", [pooled], Fresh("features_flat"), A("axis", 1));
                }
                Node("Identity", [pooled], FeaturesOutputName);
                AddValueInfo(_g.Output, FeaturesOutputName, [fs[0], fs[1]]);
            }
            return _g;
        }

        private void AddValueInfo(Google.Protobuf.Collections.RepeatedField<OnnxProto.ValueInfoProto> list, string name, long[] shape)
        {
            var t = new OnnxProto.TypeProto.Types.Tensor { ElemType = (int)OnnxProto.TensorProto.Types.DataType.Float, Shape = new OnnxProto.TensorShapeProto() };
            for (int i = 0; i < shape.Length; i++)
            {
                t.Shape.Dim.Add(i == 0 && _o.DynamicBatch
                    ? new OnnxProto.TensorShapeProto.Types.Dimension { DimParam = "batch" }
                    : new OnnxProto.TensorShapeProto.Types.Dimension { DimValue = shape[i] });
            }
            list.Add(new OnnxProto.ValueInfoProto { Name = name, Type = new OnnxProto.TypeProto { TensorType = t } });
        }

        private string Fresh(string baseName)
        {
            // Graph node names are reserved for their own nodes' outputs.
            var c = baseName;
            for (int k = 1; _names.Contains(c) || (_graph.HasNode(c) && c != _current); k++) c = baseName + "_" + k.ToString(CultureInfo.InvariantCulture);
            _names.Add(c);
            return c;
        }

        private string Node(string opType, string[] inputs, string output, params OnnxProto.AttributeProto[] attrs)
        {
            var n = new OnnxProto.NodeProto { OpType = opType, Name = output };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attrs);
            _g.Node.Add(n);
            _names.Add(output);
            return output;
        }

        private static OnnxProto.AttributeProto A(string name, long v) =>
            new() { Name = name, Type = OnnxProto.AttributeProto.Types.AttributeType.Int, I = v };

        private static OnnxProto.AttributeProto A(string name, double v) =>
            new() { Name = name, Type = OnnxProto.AttributeProto.Types.AttributeType.Float, F = (float)v };

        private static OnnxProto.AttributeProto A(string name, string v) =>
            new() { Name = name, Type = OnnxProto.AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };

        private static OnnxProto.AttributeProto A(string name, IEnumerable<long> v)
        {
            var a = new OnnxProto.AttributeProto { Name = name, Type = OnnxProto.AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(v);
            return a;
        }

        private string Init(string name, Tensor t)
        {
            using var c = t.detach().to(float32).cpu().contiguous();
            var values = c.data<float>().ToArray();
            _g.Initializer.Add(OnnxTensors.FloatTensor(name, c.shape, values));
            _names.Add(name);
            return name;
        }

        private string InitFloats(string name, long[] shape, float[] values)
        {
            var unique = Fresh(name);
            _g.Initializer.Add(OnnxTensors.FloatTensor(unique, shape, values));
            return unique;
        }

        private string InitInts(string name, params long[] values)
        {
            var unique = Fresh(name);
            _g.Initializer.Add(OnnxTensors.Int64Tensor(unique, [values.Length], values));
            return unique;
        }

        private string Scalar(string name, double v) => InitFloats(name, [], [(float)v]);

        private Tensor Param(string node, string name) =>
            _state.TryGetValue(node + "." + name, out var t) ? t : throw new NotSupportedException($"the module has no tensor '{node}.{name}'");

        private static long[] Pads(PadSpec p) => [p.Top, p.Left, p.Bottom, p.Right];

        private void Window(List<OnnxProto.AttributeProto> attrs, PadSpec p)
        {
            switch (p.Kind)
            {
                case PadKind.SameUpper: attrs.Add(A("auto_pad", "SAME_UPPER")); break;
                case PadKind.SameLower: attrs.Add(A("auto_pad", "SAME_LOWER")); break;
                default: attrs.Add(A("pads", Pads(p))); break;
            }
        }

        private void Emit(Node node, string[] x, long[][] inShapes, long[] outShape)
        {
            var name = node.Name;
            string Out(string opType, string[] inputs, params OnnxProto.AttributeProto[] attrs) => _tensor[name] = Node(opType, inputs, Fresh(name), attrs);
            switch (node.Op)
            {
                case Conv2dOp c:
                {
                    Tensor w = Param(name, "weight");
                    string weight;
                    if (c.WeightStandardizationEps is double eps)
                    {
                        var (var, mean) = var_mean(w, [1, 2, 3], unbiased: false, keepdim: true);
                        weight = Init(name + ".weight", (w - mean) / (var + eps).sqrt());
                    }
                    else weight = Init(name + ".weight", w);
                    var inputs = c.Bias ? new[] { x[0], weight, Init(name + ".bias", Param(name, "bias")) } : new[] { x[0], weight };
                    var attrs = new List<OnnxProto.AttributeProto>
                    {
                        A("kernel_shape", [c.Kernel.H, c.Kernel.W]), A("strides", [c.Stride.H, c.Stride.W]),
                        A("dilations", [c.Dilation.H, c.Dilation.W]), A("group", c.Groups),
                    };
                    Window(attrs, c.Padding);
                    Out("Conv", inputs, [.. attrs]);
                    break;
                }
                case ConvTranspose2dOp t:
                {
                    var weight = Init(name + ".weight", Param(name, "weight"));
                    var inputs = t.Bias ? new[] { x[0], weight, Init(name + ".bias", Param(name, "bias")) } : new[] { x[0], weight };
                    Out("ConvTranspose", inputs, A("kernel_shape", [t.Kernel.H, t.Kernel.W]), A("strides", [t.Stride.H, t.Stride.W]),
                        A("dilations", [t.Dilation.H, t.Dilation.W]), A("group", t.Groups), A("pads", Pads(t.Padding)),
                        A("output_padding", [t.OutputPadding.H, t.OutputPadding.W]));
                    break;
                }
                case BatchNormOp bn:
                    Out("BatchNormalization",
                        [x[0], Init(name + ".weight", Param(name, "weight")), Init(name + ".bias", Param(name, "bias")),
                         Init(name + ".running_mean", Param(name, "running_mean")), Init(name + ".running_var", Param(name, "running_var"))],
                        A("epsilon", bn.Eps), A("momentum", 1 - bn.Momentum));
                    break;
                case GroupNormOp gn:
                    EmitGroupNorm(name, gn, x[0], inShapes[0]);
                    break;
                case LinearOp l:
                {
                    // Heads stored as a 1×1 convolution (timm's ResNetV2) keep a [out, in, 1, 1] weight.
                    var weight = l.WeightAs1x1Conv ? Param(name, "weight").reshape(l.OutFeatures, l.InFeatures) : Param(name, "weight");
                    if (inShapes[0].Length == 2)
                    {
                        var inputs = new List<string> { x[0], Init(name + ".weight", weight) };
                        if (l.Bias) inputs.Add(Init(name + ".bias", Param(name, "bias")));
                        Out("Gemm", [.. inputs], A("transB", 1));
                    }
                    else
                    {
                        using var wt = weight.t();
                        var y = Node("MatMul", [x[0], Init(name + ".weight_t", wt)], l.Bias ? Fresh(name + "_matmul") : Fresh(name));
                        _tensor[name] = l.Bias ? Node("Add", [y, Init(name + ".bias", Param(name, "bias"))], Fresh(name)) : y;
                    }
                    break;
                }
                case ActivationOp a:
                    EmitActivation(name, a, x[0]);
                    break;
                case SoftmaxOp s:
                    Out("Softmax", [x[0]], A("axis", s.Axis));
                    break;
                case Pool2dOp p:
                {
                    var attrs = new List<OnnxProto.AttributeProto>
                    {
                        A("kernel_shape", [p.Kernel.H, p.Kernel.W]), A("strides", [p.Stride.H, p.Stride.W]), A("ceil_mode", p.CeilMode ? 1 : 0),
                    };
                    Window(attrs, p.Padding);
                    if (p.Pool == PoolKind.Max && TryEmitPaddedMaxPool(node, p, outShape)) break;
                    if (p.Pool == PoolKind.Max)
                    {
                        var d = p.EffectiveDilation;
                        if (d != new Size2(1, 1)) attrs.Add(A("dilations", [d.H, d.W]));
                        Out("MaxPool", [x[0]], [.. attrs]);
                    }
                    else
                    {
                        attrs.Add(A("count_include_pad", p.CountIncludePad ? 1 : 0));
                        Out("AveragePool", [x[0]], [.. attrs]);
                    }
                    break;
                }
                case GlobalPoolOp gp:
                {
                    var op = gp.Pool == PoolKind.Avg ? "GlobalAveragePool" : "GlobalMaxPool";
                    if (gp.KeepDims) Out(op, [x[0]]);
                    else
                    {
                        var pooled = Node(op, [x[0]], Fresh(name + "_keepdims"));
                        Out("Flatten", [pooled], A("axis", 1));
                    }
                    break;
                }
                case AdaptiveAvgPool2dOp ap:
                {
                    var s = inShapes[0];
                    if (ap.OutH == 1 && ap.OutW == 1) { Out("GlobalAveragePool", [x[0]]); break; }
                    if (s[2] % ap.OutH != 0 || s[3] % ap.OutW != 0)
                        throw new NotSupportedException($"adaptive pooling from {s[2]}×{s[3]} to {ap.OutH}×{ap.OutW} has uneven windows");
                    long kh = s[2] / ap.OutH, kw = s[3] / ap.OutW;
                    if (kh == 1 && kw == 1) { Out("Identity", [x[0]]); break; }
                    Out("AveragePool", [x[0]], A("kernel_shape", [kh, kw]), A("strides", [kh, kw]));
                    break;
                }
                case BinaryOp b:
                {
                    var op = b.Operation.ToString();
                    if (x.Length == 2) { Out(op, x); break; }
                    Out("Sum", x);
                    break;
                }
                case ScaleOp s:
                {
                    string y = x[0];
                    bool shift = s.Shift != 0;
                    if (s.Scale != 1 || !shift) y = Node("Mul", [y, Scalar(name + ".scale", s.Scale)], shift ? Fresh(name + "_mul") : Fresh(name));
                    _tensor[name] = shift ? Node("Add", [y, Scalar(name + ".shift", s.Shift)], Fresh(name)) : y;
                    break;
                }
                case ConcatOp c:
                    Out("Concat", x, A("axis", c.Axis));
                    break;
                case FlattenOp f:
                {
                    int start = f.StartDim < 0 ? f.StartDim + inShapes[0].Length : f.StartDim;
                    if (start == 1) Out("Flatten", x, A("axis", 1));
                    else Out("Reshape", [x[0], InitInts(name + ".shape", [.. Enumerable.Repeat(0L, start), -1])]);
                    break;
                }
                case ReshapeOp r:
                    Out("Reshape", [x[0], InitInts(name + ".shape", r.Shape)]);
                    break;
                case TransposeOp t:
                    Out("Transpose", x, A("perm", t.Perm.Select(p => (long)p)));
                    break;
                case SliceOp s:
                    Out("Slice", [x[0], InitInts(name + ".starts", s.Start), InitInts(name + ".ends", s.End), InitInts(name + ".axes", s.Axis), InitInts(name + ".steps", s.Step)]);
                    break;
                case PadOp p:
                {
                    int rank = inShapes[0].Length;
                    var pads = new long[2 * rank];
                    pads[rank - 2] = p.Top;
                    pads[rank - 1] = p.Left;
                    pads[2 * rank - 2] = p.Bottom;
                    pads[2 * rank - 1] = p.Right;
                    Out("Pad", [x[0], InitInts(name + ".pads", pads), Scalar(name + ".value", p.Value)], A("mode", p.Mode));
                    break;
                }
                case DropoutOp or IdentityOp:
                    Out("Identity", x);
                    break;
                case MatMulOp:
                    Out("MatMul", x);
                    break;
                case ConstantOp:
                    _tensor[name] = Init(name + ".value", Param(name, "value"));
                    break;
                case SqueezeOp sq:
                    Out(sq.Unsqueeze ? "Unsqueeze" : "Squeeze", [x[0], InitInts(name + ".axes", sq.Axes.Select(a => (long)a).ToArray())]);
                    break;
                case UnaryOp u:
                    Out(u.Function.ToString(), x);
                    break;
                case ReduceOp r:
                {
                    var op = r.Reduction == PoolKind.Avg ? "ReduceMean" : "ReduceMax";
                    var axes = r.Axes.Select(a => (long)a).ToArray();
                    // ReduceMax takes axes as an input from opset 18 on, ReduceMean too.
                    if (_opset >= 18) Out(op, [x[0], InitInts(name + ".axes", axes)], A("keepdims", r.KeepDims ? 1 : 0));
                    else Out(op, x, A("axes", axes), A("keepdims", r.KeepDims ? 1 : 0));
                    break;
                }
                case ExtremumOp e:
                    Out(e.Maximum ? "Max" : "Min", x);
                    break;
                default:
                    throw new NotSupportedException($"the exporter has no ONNX translation for op {node.Op.Kind} ({node.Op.GetType().Name})");
            }
        }

        /// <summary>
        /// A constant Pad feeding a MaxPool (timm's BiT stem: zero pad, then an unpadded max pool). ONNX
        /// Runtime's PadFusion folds such a Pad into the pool's own padding, which pads with −∞, not the
        /// pad value, and changes the result wherever a window holds only padding and negative values.
        /// Written instead as MaxPool over the unpadded input with the combined padding, then Max with a
        /// constant holding the pad value for windows that touch the padded ring (−∞ elsewhere): the same
        /// numbers, and nothing for the optimizer to fuse.
        /// </summary>
        private bool TryEmitPaddedMaxPool(Node node, Pool2dOp p, long[] outShape)
        {
            var padName = node.Inputs[0];
            if (padName == ModelGraph.InputName || _graph.Node(padName).Op is not PadOp { Mode: "constant" } pad) return false;
            if (p.Padding.Kind != PadKind.Explicit || p.EffectiveDilation != new Size2(1, 1)) return false;
            var src = _graph.Node(padName).Inputs[0];
            var srcShape = _graph.Shapes[src];
            long h = srcShape[2], w = srcShape[3];
            int top = pad.Top + p.Padding.Top, left = pad.Left + p.Padding.Left;
            int bottom = pad.Bottom + p.Padding.Bottom, right = pad.Right + p.Padding.Right;
            if (new[] { pad.Top, pad.Left, pad.Bottom, pad.Right }.Any(v => v < 0)) return false;
            long oh = outShape[2], ow = outShape[3];
            var border = new float[oh * ow];
            for (long i = 0; i < oh; i++)
            {
                for (long j = 0; j < ow; j++)
                {
                    bool touches = false;
                    for (long r = i * p.Stride.H - top; r < i * p.Stride.H - top + p.Kernel.H && !touches; r++)
                    {
                        for (long c = j * p.Stride.W - left; c < j * p.Stride.W - left + p.Kernel.W && !touches; c++)
                        {
                            bool inPadded = r >= -pad.Top && r < h + pad.Bottom && c >= -pad.Left && c < w + pad.Right;
                            bool inInput = r >= 0 && r < h && c >= 0 && c < w;
                            touches = inPadded && !inInput;
                        }
                    }
                    border[i * ow + j] = touches ? (float)pad.Value : float.NegativeInfinity;
                }
            }
            var pooled = Node("MaxPool", [_tensor[src]], Fresh(node.Name + "_unpadded"), A("kernel_shape", [p.Kernel.H, p.Kernel.W]),
                A("strides", [p.Stride.H, p.Stride.W]), A("pads", [top, left, bottom, right]), A("ceil_mode", p.CeilMode ? 1 : 0));
            _tensor[node.Name] = Node("Max", [pooled, InitFloats(node.Name + ".border", [1, 1, oh, ow], border)], Fresh(node.Name));
            return true;
        }

        private void EmitActivation(string name, ActivationOp a, string x)
        {
            string Out(string opType, string[] inputs, params OnnxProto.AttributeProto[] attrs) => _tensor[name] = Node(opType, inputs, Fresh(name), attrs);
            switch (a.Activation)
            {
                case ActivationKind.Relu: Out("Relu", [x]); break;
                case ActivationKind.Relu6: Out("Clip", [x, Scalar(name + ".min", 0), Scalar(name + ".max", 6)]); break;
                case ActivationKind.Clip:
                    Out("Clip", [x, Scalar(name + ".min", Math.Max(a.Alpha, float.MinValue)), Scalar(name + ".max", Math.Min(a.Beta, float.MaxValue))]);
                    break;
                case ActivationKind.LeakyRelu: Out("LeakyRelu", [x], A("alpha", a.Alpha)); break;
                case ActivationKind.Sigmoid: Out("Sigmoid", [x]); break;
                case ActivationKind.Tanh: Out("Tanh", [x]); break;
                case ActivationKind.Elu: Out("Elu", [x], A("alpha", a.Alpha)); break;
                case ActivationKind.HardSigmoid: Out("HardSigmoid", [x], A("alpha", a.Alpha), A("beta", a.Beta)); break;
                case ActivationKind.HardSwish:
                    if (_opset >= 14) Out("HardSwish", [x]);
                    else Out("Mul", [x, Node("HardSigmoid", [x], Fresh(name + "_hsig"), A("alpha", 1.0 / 6), A("beta", 0.5))]);
                    break;
                case ActivationKind.Silu: Out("Mul", [x, Node("Sigmoid", [x], Fresh(name + "_sigmoid"))]); break;
                case ActivationKind.Gelu:
                    if (_opset >= 20) Out("Gelu", [x]);
                    else
                    {
                        // 0.5·x·(1 + erf(x/√2))
                        var scaled = Node("Mul", [x, Scalar(name + ".rsqrt2", 1 / Math.Sqrt(2))], Fresh(name + "_scaled"));
                        var erf = Node("Erf", [scaled], Fresh(name + "_erf"));
                        var plus = Node("Add", [erf, Scalar(name + ".one", 1)], Fresh(name + "_plus"));
                        var half = Node("Mul", [x, Scalar(name + ".half", 0.5)], Fresh(name + "_half"));
                        Out("Mul", [half, plus]);
                    }
                    break;
                default: throw new NotSupportedException($"activation {a.Activation}");
            }
        }

        /// <summary>GroupNorm from elementary ops over [N, G, rest]: mean, then the mean of squared
        /// deviations (two passes, as PyTorch computes it; ONNX Runtime's InstanceNormalization loses
        /// precision when activations have a large mean), then the per-channel affine.</summary>
        private void EmitGroupNorm(string name, GroupNormOp gn, string x, long[] shape)
        {
            var shapeOf = Node("Shape", [x], Fresh(name + "_shape"));
            var grouped = Node("Reshape", [x, InitInts(name + ".grouped", 0, gn.Groups, -1)], Fresh(name + "_grouped"));
            string Mean(string input, string suffix) => _opset >= 18
                ? Node("ReduceMean", [input, InitInts(name + ".axes", 2)], Fresh(name + suffix), A("keepdims", 1))
                : Node("ReduceMean", [input], Fresh(name + suffix), A("axes", [2L]), A("keepdims", 1));
            var mean = Mean(grouped, "_mean");
            var centered = Node("Sub", [grouped, mean], Fresh(name + "_centered"));
            var variance = Mean(Node("Mul", [centered, centered], Fresh(name + "_sq")), "_var");
            var std = Node("Sqrt", [Node("Add", [variance, Scalar(name + ".eps", gn.Eps)], Fresh(name + "_vareps"))], Fresh(name + "_std"));
            var normed = Node("Div", [centered, std], Fresh(name + "_normed"));
            var back = Node("Reshape", [normed, shapeOf], gn.Affine ? Fresh(name + "_norm") : Fresh(name));
            if (!gn.Affine) { _tensor[name] = back; return; }
            var affineShape = new long[] { gn.Channels }.Concat(Enumerable.Repeat(1L, shape.Length - 2)).ToArray();
            using var w = Param(name, "weight").reshape(affineShape);
            using var b = Param(name, "bias").reshape(affineShape);
            var scaled = Node("Mul", [back, Init(name + ".weight", w)], Fresh(name + "_scaled"));
            _tensor[name] = Node("Add", [scaled, Init(name + ".bias", b)], Fresh(name));
        }
    }
}
