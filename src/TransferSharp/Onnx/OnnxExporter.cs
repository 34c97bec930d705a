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

    /// <summary>Writes one graph: graph-level work (input, outputs, features, names) here, each node by its op's
    /// <see cref="Op.ExportOnnx"/> through this context.</summary>
    private sealed class Writer : OnnxExportContext
    {
        private readonly GraphModule _module;
        private readonly ModelGraph _graph;
        private readonly OnnxExportOptions _o;
        private readonly OnnxProto.GraphProto _g = new();
        private readonly Dictionary<string, string> _tensor = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _state;
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly int _opset;
        private Node? _node;
        private string[] _inputs = [];

        public Writer(GraphModule module, OnnxExportOptions options)
        {
            _module = module;
            _graph = module.Graph;
            _o = options;
            _opset = options.Opset;
            _state = module.state_dict();
        }

        public override int Opset => _opset;

        public override ModelGraph Graph => _graph;

        public override Node Node => _node ?? throw new InvalidOperationException("no node is being written");

        public override IReadOnlyList<string> Inputs => _inputs;

        public override IReadOnlyList<long[]> InputShapes => Node.Inputs.Select(n => _graph.Shapes[n]).ToArray();

        public override long[] OutputShape => _graph.Shapes[Node.Name];

        public override string ValueOf(string graphNode) => _tensor[graphNode];

        public override void SetOutput(string value) => _tensor[Node.Name] = value;

        public OnnxProto.GraphProto Run()
        {
            _g.Name = _graph.Name;
            _tensor[ModelGraph.InputName] = _o.InputName;
            _names.Add(_o.InputName);
            foreach (var extra in _graph.ExtraInputs)
            {
                if (!_names.Add(extra.Name)) throw new ArgumentException($"the input name '{_o.InputName}' is the name of the graph's input '{extra.Name}'");
                _tensor[extra.Name] = extra.Name;
            }
            var outputName = MainOutputName(_graph, _o);
            if (!_names.Add(outputName) || !_names.Add(FeaturesOutputName))
                throw new ArgumentException($"input and output names must differ ('{_o.InputName}', '{outputName}', '{FeaturesOutputName}')");
            var shapes = _graph.Shapes;
            // Pooled features of a token sequence are what the model's own token pooling node computes.
            var featureSource = _o.IncludeFeatures ? _graph.TokenPoolNode ?? _graph.FeatureNode : null;
            var needed = _graph.Needed([_graph.Output, .. featureSource is { } f ? new[] { f } : []]);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var i in needed)
            {
                var node = _graph.Nodes[i];
                _node = node;
                _inputs = node.Inputs.Select(n => _tensor[n]).ToArray();
                try
                {
                    node.Op.ExportOnnx(this);
                }
                catch (NotSupportedException e)
                {
                    throw new TransferSharpException($"graph '{_graph.Name}', node '{node.Name}' ({node.Op.Kind}): {e.Message}", e);
                }
            }
            _node = null;
            var main = _tensor[_graph.Output];
            if (_o.Probabilities && _graph.ClassifierNode is not null) main = Emit("Softmax", [main], Fresh("probabilities"), OnnxAttribute.Attr("axis", 1));
            Emit("Identity", [main], outputName);
            // A text encoder's inputs and token outputs keep their sequence length dynamic, as its exporters write them.
            bool tokens = _graph.InputType == ElementType.Int64 && _graph.InputShape.Length == 2;
            AddValueInfo(_g.Input, _o.InputName, _graph.InputShape, _graph.InputType, tokens);
            foreach (var extra in _graph.ExtraInputs)
                AddValueInfo(_g.Input, extra.Name, extra.Shape, extra.Type, tokens && extra.Shape.SequenceEqual(_graph.InputShape));
            AddValueInfo(_g.Output, outputName, shapes[_graph.Output], ElementType.Float32, tokens && shapes[_graph.Output].Length == 3);
            if (featureSource is { } feature)
            {
                var fs = shapes[feature];
                string pooled = _tensor[feature];
                if (fs.Length == 3)
                {
                    // A token sequence without a pooling node of its own: the mean of its tokens.
                    pooled = _o.Opset >= 18
                        ? Emit("ReduceMean", [pooled, Ints("features_axes", 1)], Fresh("features_pool"), OnnxAttribute.Attr("keepdims", 0))
                        : Emit("ReduceMean", [pooled], Fresh("features_pool"), OnnxAttribute.Attr("axes", new long[] { 1 }), OnnxAttribute.Attr("keepdims", 0));
                    fs = [fs[0], fs[2]];
                }
                else if (fs.Length > 2)
                {
                    pooled = Emit("GlobalAveragePool", [pooled], Fresh("features_pool"));
                    pooled = Emit("Flatten", [pooled], Fresh("features_flat"), OnnxAttribute.Attr("axis", 1));
                }
                Emit("Identity", [pooled], FeaturesOutputName);
                AddValueInfo(_g.Output, FeaturesOutputName, [fs[0], fs[1]]);
            }
            RemoveUnused();
            return _g;
        }

        /// <summary>Drops the nodes (and then initializers) whose values no output needs: an op may read its input
        /// graph node's own inputs instead (the attention reading q, k and v, not their concatenation).</summary>
        private void RemoveUnused()
        {
            var needed = _g.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
            var kept = new List<OnnxProto.NodeProto>();
            for (int i = _g.Node.Count - 1; i >= 0; i--)
            {
                var n = _g.Node[i];
                if (!n.Output.Any(needed.Contains)) continue;
                kept.Add(n);
                foreach (var input in n.Input) needed.Add(input);
            }
            if (kept.Count == _g.Node.Count) return;
            kept.Reverse();
            _g.Node.Clear();
            _g.Node.AddRange(kept);
            var initializers = _g.Initializer.Where(t => needed.Contains(t.Name)).ToList();
            _g.Initializer.Clear();
            _g.Initializer.AddRange(initializers);
        }

        private void AddValueInfo(Google.Protobuf.Collections.RepeatedField<OnnxProto.ValueInfoProto> list, string name, long[] shape,
            ElementType type = ElementType.Float32, bool dynamicSequence = false)
        {
            var t = new OnnxProto.TypeProto.Types.Tensor { ElemType = (int)CastOp.OnnxType(type), Shape = new OnnxProto.TensorShapeProto() };
            for (int i = 0; i < shape.Length; i++)
            {
                t.Shape.Dim.Add(i == 0 && _o.DynamicBatch ? new OnnxProto.TensorShapeProto.Types.Dimension { DimParam = "batch" }
                    : i == 1 && dynamicSequence ? new OnnxProto.TensorShapeProto.Types.Dimension { DimParam = "sequence" }
                    : new OnnxProto.TensorShapeProto.Types.Dimension { DimValue = shape[i] });
            }
            list.Add(new OnnxProto.ValueInfoProto { Name = name, Type = new OnnxProto.TypeProto { TensorType = t } });
        }

        public override string Fresh(string baseName)
        {
            // Graph node names are reserved for their own nodes' outputs.
            var c = baseName;
            for (int k = 1; _names.Contains(c) || (_graph.HasNode(c) && c != _node?.Name); k++) c = baseName + "_" + k.ToString(CultureInfo.InvariantCulture);
            _names.Add(c);
            return c;
        }

        public override string Emit(string opType, IReadOnlyList<string> inputs, string output, params OnnxAttribute[] attributes)
        {
            var n = new OnnxProto.NodeProto { OpType = opType, Name = output };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attributes.Select(Proto));
            _g.Node.Add(n);
            _names.Add(output);
            return output;
        }

        private static OnnxProto.AttributeProto Proto(OnnxAttribute a)
        {
            var p = new OnnxProto.AttributeProto { Name = a.Name };
            switch (a.Value)
            {
                case long i: p.Type = OnnxProto.AttributeProto.Types.AttributeType.Int; p.I = i; break;
                case double f: p.Type = OnnxProto.AttributeProto.Types.AttributeType.Float; p.F = (float)f; break;
                case string s: p.Type = OnnxProto.AttributeProto.Types.AttributeType.String; p.S = ByteString.CopyFromUtf8(s); break;
                case long[] ints: p.Type = OnnxProto.AttributeProto.Types.AttributeType.Ints; p.Ints.AddRange(ints); break;
                default: throw new InvalidOperationException($"attribute '{a.Name}' holds a {a.Value.GetType().Name}");
            }
            return p;
        }

        public override string Initializer(string name, Tensor value)
        {
            using var c = value.detach().to(float32).cpu().contiguous();
            var values = c.data<float>().ToArray();
            _g.Initializer.Add(OnnxTensors.FloatTensor(name, c.shape, values));
            _names.Add(name);
            return name;
        }

        public override string Floats(string name, long[] shape, float[] values)
        {
            var unique = Fresh(name);
            _g.Initializer.Add(OnnxTensors.FloatTensor(unique, shape, values));
            return unique;
        }

        public override string Ints(string name, params long[] values)
        {
            var unique = Fresh(name);
            _g.Initializer.Add(OnnxTensors.Int64Tensor(unique, [values.Length], values));
            return unique;
        }

        public override Tensor Parameter(string name)
        {
            var key = name == ParameterShape.NodeItself ? Node.Name : Node.Name + "." + name;
            return _state.TryGetValue(key, out var t) ? t : throw new NotSupportedException($"the module has no tensor '{key}'");
        }
    }
}
