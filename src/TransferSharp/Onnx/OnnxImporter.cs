using System.Globalization;
using System.Text;
using TransferSharp.Vision.Graph;
using OnnxProto = global::Onnx;

namespace TransferSharp.Onnx;

/// <summary>
/// Imports an ONNX file (opsets 7–21) with one floating-point input of rank 2 to 5 (batch first: MLPs, sequences,
/// images, volumes), or a text encoder's integer token inputs [batch, sequence], as a layer graph with trainable
/// parameters. Covers the operators CNNs and MLPs exported by
/// PyTorch, tf2onnx and CNTK use; anything else is reported by op type, node name and opset before any weight is
/// read. Shape computations on constants (Shape, Gather, Unsqueeze, Concat, Equal, Where, …) are folded at import,
/// keeping the batch dimension dynamic. ONNX's backend node tests measure it (bench onnx-conformance, docs/onnx.md).
/// </summary>
public static class OnnxImporter
{
    // Declared before SupportedOperators, which reads it during static initialisation.
    /// <summary>Operators the importer handles itself: shape computations folded at import, casts and aliases.</summary>
    private static readonly string[] MachineryOperators = ["Split", "Identity", "Constant", "Shape", "Gather", "Cast", "Equal", "Where", "ConstantOfShape"];

    /// <summary>The ONNX operators the importer translates (default domain): those declared beside the ops they become
    /// (<see cref="OnnxImports"/>) and the importer's own machinery, which computes constants or passes values through.</summary>
    public static IReadOnlyCollection<string> SupportedOperators { get; } = new SortedSet<string>(
        OnnxImports.Translators.Keys.Concat(MachineryOperators), StringComparer.Ordinal);

    /// <summary>Imports a file. Raises <see cref="OnnxUnsupportedException"/> listing every node it
    /// cannot translate, and <see cref="OnnxException"/> for corrupt or malformed files.</summary>
    public static OnnxModel Import(string path, OnnxImportOptions? options = null)
    {
        path = Path.GetFullPath(path);
        return Import(path, OnnxModelFile.Read(path), options);
    }

    /// <summary>Imports a model already read from <paramref name="path"/> (the conformance runner hands in node tests
    /// whose extra inputs it has turned into initializers).</summary>
    internal static OnnxModel Import(string path, OnnxProto.ModelProto model, OnnxImportOptions? options = null)
    {
        options ??= new OnnxImportOptions();
        int opset = OnnxModelFile.Opset(path, model);
        var order = OnnxModelFile.SortAndCheck(path, model.Graph);

        var unsupported = new List<UnsupportedNode>();
        for (int i = 0; i < order.Count; i++)
        {
            var n = order[i];
            if (n.Domain is not ("" or "ai.onnx"))
                unsupported.Add(new UnsupportedNode(n.OpType, NodeLabel(n, i), DomainOpset(model, n.Domain), $"custom domain '{n.Domain}'"));
            else if (!SupportedOperators.Contains(n.OpType))
                unsupported.Add(new UnsupportedNode(n.OpType, NodeLabel(n, i), opset, "operator not supported"));
        }
        if (unsupported.Count > 0) throw new OnnxUnsupportedException(path, unsupported);

        var dir = Path.GetDirectoryName(path)!;
        foreach (var t in model.Graph.Initializer) OnnxTensors.Validate(path, dir, t, $"initializer '{t.Name}'");

        var converter = new Converter(path, dir, model, opset, options);
        return converter.Run(order);
    }

    private static int DomainOpset(OnnxProto.ModelProto m, string domain) =>
        (int)(m.OpsetImport.FirstOrDefault(o => o.Domain == domain)?.Version ?? 0);

    internal static string NodeLabel(OnnxProto.NodeProto n, int index) => n.Name.Length > 0 ? n.Name : $"#{index} ({n.OpType})";

    /// <summary>Turns an ONNX name into a module-path segment: letters, digits and underscores.</summary>
    internal static string Sanitize(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c == '_';
            if (ok) sb.Append(c);
            else if (sb.Length > 0 && sb[^1] != '_') sb.Append('_');
        }
        var s = sb.ToString().Trim('_');
        if (s.Length > 0 && char.IsAsciiDigit(s[0])) s = "n" + s;
        return s;
    }

    private sealed class UnsupportedVariant(string reason) : Exception(reason);

    /// <summary>Translates nodes one by one, tracking graph values and import-time constants.</summary>
    private sealed class Converter : OnnxImportContext
    {
        private readonly string _file;
        private readonly string _dir;
        private readonly OnnxProto.ModelProto _model;
        private readonly int _opset;
        private readonly OnnxImportOptions _options;
        private readonly Dictionary<string, OnnxProto.TensorProto> _initializers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConstTensor> _consts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Sym> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConstTensor> _state = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _nodeNames = new(StringComparer.Ordinal);
        private readonly HashSet<string> _used = new(StringComparer.Ordinal) { ModelGraph.InputName };
        private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _readers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, OnnxProto.NodeProto> _producers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<OnnxProto.NodeProto>> _consumers = new(StringComparer.Ordinal);
        private readonly Dictionary<OnnxProto.NodeProto, bool> _tokenConcats = new(ReferenceEqualityComparer.Instance);
        private GraphBuilder _b = null!;
        // Graph values holding integers (token inputs and what shape ops make of them): a Cast of one to float is a node.
        private readonly HashSet<string> _integers = new(StringComparer.Ordinal);
        // The sequence length the graph is traced at when token inputs leave it dynamic; null otherwise.
        private long? _sequenceLength;
        // ONNX values whose nodes a fused pattern (LayerNorm written as primitives) already computed.
        private readonly HashSet<string> _fused = new(StringComparer.Ordinal);
        private OnnxProto.NodeProto _node = null!;
        private string _label = "";

        public Converter(string file, string dir, OnnxProto.ModelProto model, int opset, OnnxImportOptions options)
        {
            _file = file;
            _dir = dir;
            _model = model;
            _opset = opset;
            _options = options;
            foreach (var t in model.Graph.Initializer) _initializers[t.Name] = t;
        }

        public OnnxModel Run(List<OnnxProto.NodeProto> order)
        {
            var g = _model.Graph;
            var inputs = OnnxModelFile.FedInputs(g);
            if (inputs.Count == 0) throw new OnnxException(_file, "has no graph input");
            var input = inputs[0];
            var (shape, type) = InputShape(input, main: true);
            if (inputs.Count > 1 && type != ElementType.Int64)
                throw new OnnxException(_file, $"has {inputs.Count} graph inputs ({string.Join(", ", inputs.Select(i => i.Name))}); the importer takes models with one input, or a text encoder's integer token inputs");
            var name = _options.Name ?? Path.GetFileNameWithoutExtension(_file);
            _b = new GraphBuilder(name, shape, type);
            _values[input.Name] = _b.Input;
            _nodeNames[input.Name] = ModelGraph.InputName;
            if (type == ElementType.Int64) _integers.Add(input.Name);
            foreach (var extra in inputs.Skip(1))
            {
                var (extraShape, extraType) = InputShape(extra, main: false);
                if (extra.Name == ModelGraph.InputName || !_used.Add(extra.Name))
                    throw new OnnxException(_file, $"input '{extra.Name}' has a name the importer reserves; rename it");
                _values[extra.Name] = _b.AddInput(extra.Name, extraShape, extraType);
                _nodeNames[extra.Name] = extra.Name;
                if (extraType == ElementType.Int64) _integers.Add(extra.Name);
            }

            foreach (var n in order)
            {
                foreach (var i in n.Input)
                {
                    _consumed.Add(i);
                    _readers[i] = _readers.GetValueOrDefault(i) + 1;
                    if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                    list.Add(n);
                }
                foreach (var o in n.Output) _producers[o] = n;
            }
            // Only the graph output being imported is read: a node's other outputs that the file also lists as graph
            // outputs (LayerNormalization's mean, MaxPool's indices) are not computed, so they do not block it.
            _consumed.Add(_options.Output ?? (g.Output.Count > 0 ? g.Output[0].Name : ""));

            for (int i = 0; i < order.Count; i++)
            {
                _node = order[i];
                _label = NodeLabel(_node, i);
                if (_node.Output.Count > 0 && _node.Output.All(_fused.Contains)) continue;
                try
                {
                    Convert();
                }
                catch (UnsupportedVariant e)
                {
                    throw new OnnxUnsupportedException(_file, [new UnsupportedNode(_node.OpType, _label, _opset, e.Message)]);
                }
                catch (GraphException e)
                {
                    throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}): {e.Message}", e);
                }
            }

            if (_options.Output is null && g.Output.Count == 0) throw new OnnxException(_file, "declares no graph output");
            var outputName = _options.Output ?? g.Output[0].Name;
            if (!g.Output.Any(o => o.Name == outputName))
                throw new OnnxException(_file, $"has no graph output '{outputName}'; outputs: {string.Join(", ", g.Output.Select(o => o.Name))}");
            if (!_values.TryGetValue(outputName, out var output))
                throw new OnnxException(_file, $"graph output '{outputName}' is a constant; nothing to run");
            if (output.Name == ModelGraph.InputName) output = _b.Add(new IdentityOp(), Unique("output"), output);

            var graph = _b.Build(output);
            string? feature = _options.FeatureNode is { } f ? Resolve(graph, f) : DefaultFeatureNode(graph);
            string? classifier = StatedClassifier(graph, outputName);
            graph = graph.With(featureNode: feature, classifierNode: classifier);
            graph = graph.With(groups: GraphSurgery.GroupsByResolution(graph));
            // Drop state of nodes the chosen output does not need.
            var needed = graph.Needed([graph.Output]).Select(i => graph.Nodes[i].Name).ToHashSet(StringComparer.Ordinal);
            if (needed.Count != graph.Nodes.Count)
            {
                bool keepFeature = feature is not null && needed.Contains(feature);
                if (!keepFeature && _options.FeatureNode is { } asked)
                    throw new OnnxException(_file, $"feature node '{asked}' does not feed the output '{outputName}': choose a node on the output's path");
                graph = graph.With(nodes: graph.Nodes.Where(n => needed.Contains(n.Name)).ToArray(),
                    featureNode: keepFeature ? feature : null, clearFeatureNode: !keepFeature);
                graph = graph.With(groups: GraphSurgery.GroupsByResolution(graph));
            }
            // A key is "node.parameter", or the node's own name for a tensor the node itself names (cls_token, pos_embed).
            var state = _state.Where(kv => needed.Contains(kv.Key) || kv.Key.LastIndexOf('.') is > 0 and var dot && needed.Contains(kv.Key[..dot]))
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            var producer = $"{_model.ProducerName} {_model.ProducerVersion}".Trim();
            var metadata = OnnxModelFile.Metadata(_model);
            return new OnnxModel(_file, graph, state, _opset, producer, input.Name, outputName, _nodeNames, metadata);
        }

        /// <summary>
        /// The classifier, stated rather than guessed from what the output looks like: a file TransferSharp wrote says how
        /// many classes its output scores (0: it is features); in any other file the classifier is a linear layer (Gemm, or
        /// MatMul + Add) that produces the output, directly or through ops that keep its [N, K] scores (softmax, flatten,
        /// reshape, squeeze, identity, dropout). An output that is anything else — a pooled feature map, a ReLU after a
        /// linear layer (a headless VGG), a convolution — states no classifier, and predicting classes with it is refused.
        /// </summary>
        private string? StatedClassifier(ModelGraph graph, string outputName)
        {
            var metadata = OnnxModelFile.Metadata(_model);
            int? stated = OnnxExporter.StatedClasses(metadata, outputName);
            if (stated == 0) return null;
            var node = graph.Output;
            while (node != ModelGraph.InputName && graph.Node(node).Op is SoftmaxOp or FlattenOp or ReshapeOp or SqueezeOp or IdentityOp or DropoutOp
                   && graph.Shapes[node].Length == 2 && graph.Shapes[graph.Node(node).Inputs[0]].SequenceEqual(graph.Shapes[node]))
                node = graph.Node(node).Inputs[0];
            string? classifier = node != ModelGraph.InputName && graph.Node(node).Op is LinearOp && graph.Shapes[node].Length == 2 ? node : null;
            if (stated is { } n && (classifier is null || ((LinearOp)graph.Node(classifier).Op).OutFeatures != n))
                throw new OnnxException(_file, $"its metadata states {n} classes, but its output '{outputName}' is not a linear layer with {n} outputs");
            return classifier;
        }

        private string Resolve(ModelGraph graph, string name)
        {
            if (graph.HasNode(name)) return name;
            if (_nodeNames.TryGetValue(name, out var n) && graph.HasNode(n)) return n;
            throw new OnnxException(_file, $"feature node '{name}' is neither an ONNX node or tensor nor a graph node");
        }

        /// <summary>The shape an input is built at and its element type. Floating inputs have rank 2 to 5 and only a dynamic
        /// batch (and image height and width); integer inputs are a text encoder's [N, T] token inputs, whose dynamic
        /// sequence length is traced at <see cref="OnnxImportOptions.SequenceLength"/> and kept dynamic.</summary>
        private (long[] Shape, ElementType Type) InputShape(OnnxProto.ValueInfoProto input, bool main)
        {
            var dims = input.Type?.TensorType?.Shape?.Dim.ToList()
                ?? throw new OnnxException(_file, $"input '{input.Name}' is not a tensor with a known rank");
            var elem = input.Type.TensorType.ElemType;
            bool integer = (OnnxProto.TensorProto.Types.DataType)elem is OnnxProto.TensorProto.Types.DataType.Int64 or OnnxProto.TensorProto.Types.DataType.Int32;
            if (integer)
            {
                if (dims.Count != 2)
                    throw new OnnxException(_file, $"input '{input.Name}' holds integers with rank {dims.Count}; the importer takes integer inputs only as a text encoder's token inputs [batch, sequence]");
                long n = dims[0].HasDimValue && dims[0].DimValue > 0 ? dims[0].DimValue : 1;
                long t = dims[1].HasDimValue && dims[1].DimValue > 0 ? dims[1].DimValue : _options.SequenceLength;
                if (!dims[1].HasDimValue || dims[1].DimValue <= 0)
                {
                    if (_sequenceLength is { } traced && traced != t) throw new OnnxException(_file, $"input '{input.Name}' has another sequence length than the other token inputs");
                    _sequenceLength = t;
                }
                return ([n, t], ElementType.Int64);
            }
            if (!main) throw new OnnxException(_file, $"input '{input.Name}' holds {OnnxTensors.TypeName(elem)}; beside token ids the importer takes only integer token inputs");
            if (dims.Count is < 2 or > 5)
                throw new OnnxException(_file, $"input '{input.Name}' has rank {dims.Count}; the importer takes inputs of rank 2 to 5 ([N, F], [N, T, C], [N, C, H, W], [N, C, D, H, W]) whose first dimension is the batch");
            if (!OnnxTensors.IsFloating(elem))
                throw new OnnxException(_file, $"input '{input.Name}' holds {OnnxTensors.TypeName(elem)}; the importer takes floating-point inputs (or a text encoder's integer token inputs [batch, sequence])");
            // Images may leave height and width dynamic (ImageSize stands in); every other dimension but the batch must be known.
            var shape = new long[dims.Count];
            // A declared batch size is the shape the file's constants were computed for; a dynamic one builds with 1.
            shape[0] = dims[0].HasDimValue && dims[0].DimValue > 0 ? dims[0].DimValue : 1;
            for (int d = 1; d < dims.Count; d++)
            {
                if (dims[d].HasDimValue && dims[d].DimValue > 0) shape[d] = dims[d].DimValue;
                else if (dims.Count == 4 && d >= 2) shape[d] = _options.ImageSize;
                else throw new OnnxException(_file, $"input '{input.Name}' leaves dimension {d} dynamic" + (d == 1 ? " (the channel count)" : "") + "; only the batch dimension (and the height and width of an image) may be dynamic");
            }
            return (shape, ElementType.Float32);
        }

        private static string? DefaultFeatureNode(ModelGraph graph)
        {
            string? last = null;
            foreach (var n in graph.Nodes)
            {
                var s = graph.Shapes[n.Name];
                if (s.Length == 4 && s[2] * s[3] > 1) last = n.Name;
            }
            return last;
        }

        // ------------------------------------------------------------ values

        public override int Opset => _opset;

        public override string OpType => _node.OpType;

        public override int InputCount => _node.Input.Count;

        public override Exception Unsupported(string reason) => new UnsupportedVariant(reason);

        public override Exception Malformed(string detail) => new OnnxException(_file, $"node '{_label}': {detail}");

        public override bool Has(int i) => i < _node.Input.Count && _node.Input[i].Length > 0;

        private bool TryConst(string name, out ConstTensor value)
        {
            if (_consts.TryGetValue(name, out value!)) return true;
            if (_initializers.TryGetValue(name, out var t))
            {
                value = OnnxTensors.Decode(_file, _dir, t, $"initializer '{name}'");
                _consts[name] = value;
                return true;
            }
            return false;
        }

        public override bool IsConstant(int i) => Has(i) && (_consts.ContainsKey(_node.Input[i]) || _initializers.ContainsKey(_node.Input[i]));

        public override ConstTensor Constant(int i, string what)
        {
            if (!Has(i)) throw new UnsupportedVariant($"{what} is missing");
            if (!TryConst(_node.Input[i], out var v)) throw new UnsupportedVariant($"{what} ('{_node.Input[i]}') is computed at run time; only constant {what}s are supported");
            return v;
        }

        /// <summary>The graph value of an input; a constant becomes a ConstantOp node holding it as a buffer.</summary>
        public override Sym Value(int i)
        {
            if (i >= _node.Input.Count)
                throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}) has {_node.Input.Count} input(s); input {i + 1} is required");
            var name = _node.Input[i];
            if (_values.TryGetValue(name, out var s)) return s;
            if (!TryConst(name, out var c)) throw new OnnxException(_file, $"node '{_label}' reads '{name}', which has no value");
            if (c.SequenceAxis is not null)
                throw new UnsupportedVariant($"'{name}' is a constant cut to the sequence length, used as a tensor (only position ids gathered from an embedding table follow the sequence length)");
            var nodeName = Unique(Sanitize(name) is { Length: > 0 } sn ? sn : "const");
            _state[nodeName + ".value"] = new ConstTensor(c.Shape, c.AsFloats());
            var sym = _b.Add(new ConstantOp(c.Shape), nodeName);
            _values[name] = sym;
            return sym;
        }

        public override void Emit(Sym value, int output = 0)
        {
            if (output >= _node.Output.Count) return;
            var name = _node.Output[output];
            _values[name] = value;
            _nodeNames.TryAdd(name, value.Name);
            if (output == 0 && _node.Name.Length > 0) _nodeNames.TryAdd(_node.Name, value.Name);
        }

        public override Sym Add(Op op, string name, params Sym[] inputs) => _b.Add(op, name, inputs);

        public override Sym AddWithState(Op op, string name, Sym input, params (string Parameter, ConstTensor Value)[] state)
        {
            var sym = _b.Add(op, name, input);
            foreach (var (parameter, value) in state) _state[name + "." + parameter] = value;
            return sym;
        }

        public override bool TryAddLinearBias(int input, ConstTensor bias)
        {
            if (!Has(input) || !_values.TryGetValue(_node.Input[input], out var value) || value.Name == ModelGraph.InputName
                || bias.Shape.Length > value.Shape.Length) return false;
            var valueName = _node.Input[input];
            if (_readers.GetValueOrDefault(valueName) != 1 || _model.Graph.Output.Any(o => o.Name == valueName)) return false;
            if (_b.NodeOp(value.Name) is not LinearOp { Bias: false, WeightAs1x1Conv: false } linear || bias.Count != linear.OutFeatures) return false;
            _b.ReplaceOp(value.Name, linear with { Bias = true });
            _state[value.Name + ".bias"] = new ConstTensor([linear.OutFeatures], bias.AsFloats());
            return true;
        }

        private void EmitConst(ConstTensor c, int output = 0)
        {
            if (output < _node.Output.Count) _consts[_node.Output[output]] = c;
        }

        public override void Alias(int input = 0)
        {
            if (input >= _node.Input.Count)
                throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}) has {_node.Input.Count} input(s); input {input + 1} is required");
            var name = _node.Input[input];
            if (_values.TryGetValue(name, out var s)) Emit(s);
            else if (TryConst(name, out var c)) EmitConst(c);
        }

        public override void RequireUnusedOutputs(int from)
        {
            for (int o = from; o < _node.Output.Count; o++)
                if (_node.Output[o].Length > 0 && _consumed.Contains(_node.Output[o]))
                    throw new UnsupportedVariant($"output {o} ('{_node.Output[o]}') is used; only the first output is supported");
        }

        // ------------------------------------------------------------ names

        private string Unique(string baseName)
        {
            if (baseName.Length == 0) baseName = _node.OpType.ToLowerInvariant();
            var candidate = baseName;
            for (int k = 1; !_used.Add(candidate); k++) candidate = baseName + "_" + k.ToString(CultureInfo.InvariantCulture);
            return candidate;
        }

        /// <summary>A node name: the module path when the weight is named like a PyTorch parameter
        /// ("layer1.0.conv1.weight"), else the sanitised ONNX node name.</summary>
        public override string NodeName(int weightInput = -1)
        {
            if (weightInput >= 0 && Has(weightInput))
            {
                var w = _node.Input[weightInput];
                foreach (var suffix in new[] { ".weight", ".running_mean", ".gamma" })
                {
                    if (!w.EndsWith(suffix, StringComparison.Ordinal)) continue;
                    var path = w[..^suffix.Length];
                    if (path.Split('.').All(seg => seg.Length > 0 && seg.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) && path != ModelGraph.InputName && !_used.Contains(path))
                        return Unique(path);
                }
            }
            if (weightInput >= 0 && BiasPath() is { } biasPath) return Unique(biasPath);
            var s = Sanitize(_node.Name);
            if (s.Length == 0 && _node.Output.Count > 0) s = Sanitize(_node.Output[0]);
            return Unique(s);
        }

        /// <summary>The module path of the bias that the node's only reader adds (PyTorch's exporter stores a Linear's
        /// weight transposed under an anonymous name, "onnx::MatMul_927", and adds the bias it keeps under its parameter name
        /// "encoder.layer.0.attention.self.query.bias" right after), or null.</summary>
        private string? BiasPath()
        {
            if (_node.Output.Count != 1 || !_consumers.TryGetValue(_node.Output[0], out var readers) || readers is not [{ OpType: "Add" } add]) return null;
            var bias = add.Input.FirstOrDefault(i => i != _node.Output[0] && _initializers.ContainsKey(i));
            if (bias is null || !bias.EndsWith(".bias", StringComparison.Ordinal)) return null;
            var path = bias[..^".bias".Length];
            return path.Split('.').All(seg => seg.Length > 0 && seg.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) && !_used.Contains(path) ? path : null;
        }

        /// <summary>
        /// Layer normalisation written as primitives (PyTorch's exporter before opset 17):
        /// <c>d = x − ReduceMean(x); y = d / Sqrt(ReduceMean(Pow(d, 2)) + eps) · weight + bias</c>, over the last axis, with
        /// constant eps, weight and bias. Read at its first ReduceMean, it becomes one trainable <see cref="LayerNormOp"/>
        /// named after its weight ("encoder.layer.0.output.LayerNorm"); the nodes it replaces are skipped. Any other
        /// shape of the pattern is imported primitive by primitive.
        /// </summary>
        private bool TryFuseLayerNorm()
        {
            var x = _node.Input[0];
            if (!_values.TryGetValue(x, out var xv) || xv.Shape.Length < 2 || !LastAxisKeep(_node, xv.Shape.Length)) return false;
            OnnxProto.NodeProto? Only(string value, string opType) =>
                _consumers.TryGetValue(value, out var rs) && rs.Count == 1 && rs[0].OpType == opType ? rs[0] : null;
            var mean = _node.Output[0];
            // x − mean: the Sub reading x and the mean.
            var sub = _consumers.GetValueOrDefault(mean) is [{ OpType: "Sub" } only] && only.Input.Count == 2 && only.Input[0] == x && only.Input[1] == mean ? only : null;
            if (sub is null) return false;
            var d = sub.Output[0];
            if (!_consumers.TryGetValue(d, out var dReaders) || dReaders.Count != 2) return false;
            var pow = dReaders.FirstOrDefault(n => n.OpType == "Pow" && n.Input[0] == d);
            var div = dReaders.FirstOrDefault(n => n.OpType == "Div" && n.Input[0] == d);
            if (pow is null || div is null || !TryConstAhead(pow.Input[1], out var two) || two.Count != 1 || two[0] != 2) return false;
            var variance = Only(pow.Output[0], "ReduceMean");
            if (variance is null || !LastAxisKeep(variance, xv.Shape.Length)) return false;
            var addEps = Only(variance.Output[0], "Add");
            string? epsName = addEps?.Input.FirstOrDefault(i => i != variance.Output[0]);
            if (addEps is null || epsName is null || !TryConstAhead(epsName, out var eps) || eps.Count != 1) return false;
            var sqrt = Only(addEps.Output[0], "Sqrt");
            if (sqrt is null || div.Input[1] != sqrt.Output[0] || _readers.GetValueOrDefault(sqrt.Output[0]) != 1) return false;
            var mul = Only(div.Output[0], "Mul");
            string? weightName = mul?.Input.FirstOrDefault(i => i != div.Output[0]);
            long c = xv.Shape[^1];
            if (mul is null || weightName is null || !TryConstAhead(weightName, out var weight) || weight.Count != c || !weight.IsFloat) return false;
            var addBias = Only(mul.Output[0], "Add");
            string? biasName = addBias?.Input.FirstOrDefault(i => i != mul.Output[0]);
            if (addBias is null || biasName is null || !TryConstAhead(biasName, out var bias) || bias.Count != c || !bias.IsFloat) return false;
            // An intermediate value the file also lists as a graph output would not be computed.
            string[] inner = [mean, d, pow.Output[0], variance.Output[0], addEps.Output[0], sqrt.Output[0], div.Output[0], mul.Output[0]];
            if (inner.Any(v => _model.Graph.Output.Any(o => o.Name == v))) return false;
            var op = new LayerNormOp((int)c, eps[0]);
            var name = weightName.EndsWith(".weight", StringComparison.Ordinal) && !_used.Contains(weightName[..^".weight".Length])
                && weightName[..^".weight".Length].Split('.').All(seg => seg.Length > 0 && seg.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
                ? Unique(weightName[..^".weight".Length]) : NodeName();
            var y = AddWithState(op, name, xv, ("weight", new ConstTensor([c], weight.AsFloats())), ("bias", new ConstTensor([c], bias.AsFloats())));
            foreach (var n in new[] { sub, pow, variance, addEps, sqrt, div, mul, addBias }) foreach (var o in n.Output) _fused.Add(o);
            _values[addBias.Output[0]] = y;
            _nodeNames.TryAdd(addBias.Output[0], y.Name);
            return true;
        }

        /// <summary>A constant, also one a Constant node later in the order defines (a pattern read ahead sees the constants
        /// the exporter wrote between its nodes).</summary>
        private bool TryConstAhead(string name, out ConstTensor value)
        {
            if (TryConst(name, out value)) return true;
            if (_producers.TryGetValue(name, out var producer) && producer.OpType == "Constant" && producer.Domain is "" or "ai.onnx"
                && producer.Attribute.FirstOrDefault(a => a.Name == "value") is { } v)
            {
                value = OnnxTensors.Decode(_file, _dir, v.T, $"constant '{producer.Name}'");
                return true;
            }
            return false;
        }

        /// <summary>A ReduceMean over the last axis alone that keeps its dimension (axes as the attribute, opsets before 18).</summary>
        private bool LastAxisKeep(OnnxProto.NodeProto reduce, int rank)
        {
            if (reduce.Attribute.FirstOrDefault(a => a.Name == "keepdims") is { I: 0 }) return false;
            var axes = reduce.Attribute.FirstOrDefault(a => a.Name == "axes")?.Ints.ToArray();
            if (axes is null && reduce.Input.Count > 1 && TryConstAhead(reduce.Input[1], out var given)) axes = given.AsInts();
            return axes is [var a] && Norm(a, rank) == rank - 1;
        }

        public override string Extra(string baseName, string suffix) => Unique(baseName + "_" + suffix);

        // ------------------------------------------------------------ attributes

        private OnnxProto.AttributeProto? Attr(string name) => _node.Attribute.FirstOrDefault(a => a.Name == name);

        public override bool HasAttribute(string name) => Attr(name) is not null;

        public override long Int(string name, long fallback) => Attr(name) is { } a ? a.I : fallback;

        public override float Float(string name, float fallback) => Attr(name) is { } a ? a.F : fallback;

        public override long[]? Ints(string name) => Attr(name) is { } a ? a.Ints.ToArray() : null;

        public override double[]? FloatList(string name) => Attr(name) is { } a ? a.Floats.Select(f => (double)f).ToArray() : null;

        public override string? String(string name) => Attr(name) is { } a ? a.S.ToStringUtf8() : null;

        // ------------------------------------------------------------ translation

        /// <summary>Shape operators that carry integers through unchanged (a token input's mask reshaped or unsqueezed).</summary>
        private static readonly HashSet<string> IntegerPreserving = new(StringComparer.Ordinal)
            { "Unsqueeze", "Squeeze", "Reshape", "Slice", "Transpose", "Flatten", "Identity", "Concat" };

        private void Convert()
        {
            if (LearnedTokens()) return;
            if (_node.OpType == "ReduceMean" && TryFuseLayerNorm()) return;
            // Integers (token inputs) feed embedding lookups, casts and shape operators; the float ops would compute on ids.
            if (_node.OpType is not ("Gather" or "Cast" or "Shape") && !IntegerPreserving.Contains(_node.OpType)
                && _node.Input.FirstOrDefault(_integers.Contains) is { } integer)
                throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}) reads the integers of '{integer}'; integer inputs are read only as a text encoder's token inputs, by embedding lookups (Gather), casts and shape operators");
            if (OnnxImports.Translators.TryGetValue(_node.OpType, out var translate))
            {
                translate(this);
                if (IntegerPreserving.Contains(_node.OpType) && _node.Input.Count > 0 && _integers.Contains(_node.Input[0]))
                    foreach (var o in _node.Output) _integers.Add(o);
                return;
            }
            switch (_node.OpType)
            {
                case "Split": Split(); break;
                case "Identity": Alias(); break;
                case "Constant": ConstantNode(); break;
                case "Shape": Shape(); break;
                case "Gather": Gather(); break;
                case "Cast": Cast(); break;
                case "Equal": Equal(); break;
                case "Where": Where(); break;
                case "ConstantOfShape": ConstantOfShape(); break;
                default: throw new UnsupportedVariant("operator not supported");
            }
        }

        // ------------------------------------------------------------ learned tokens of vision transformers

        /// <summary>
        /// A vision transformer's learned tokens, imported as the parameters they are rather than as frozen constants, so
        /// fine-tuning an imported ViT trains them as timm does: an initializer [1, k, C] broadcast to the batch
        /// (Add(x·0, tokens), TransferSharp's export) and put in front of a token sequence by a Concat on the token axis
        /// becomes <see cref="PrefixTokensOp"/> (class and register tokens); an initializer [1, T, C] added to a token
        /// sequence [N, T, C] flattened from a patch grid of at most T cells becomes <see cref="PositionEmbeddingOp"/>
        /// (the cells beyond the grid are its prefix rows). Each is named after its initializer. Returns false for any
        /// other node, which translates as usual.
        /// </summary>
        private bool LearnedTokens()
        {
            switch (_node.OpType)
            {
                case "Add" when _node.Output.Count == 1 && Tokens(_node.Output[0]) is not null:
                    // Put in front by its Concat below: nothing to compute on its own.
                    return _consumers.GetValueOrDefault(_node.Output[0]) is [var concat] && IsTokenConcat(concat);
                case "Concat" when IsTokenConcat(_node):
                {
                    var x = _values[_node.Input[^1]];
                    for (int i = _node.Input.Count - 2; i >= 0; i--)
                    {
                        var t = Tokens(_node.Input[i])!;
                        var name = Unique(Sanitize(t.Name) is { Length: > 0 } sn ? sn : "tokens");
                        x = _b.Add(new PrefixTokensOp((int)t.Dims[1], (int)t.Dims[2]), name, x);
                        _state[name] = LearnedTensor(t);
                    }
                    Emit(x);
                    return true;
                }
                case "Add" when _node.Input.Count == 2:
                    for (int k = 0; k < 2; k++)
                    {
                        if (!_initializers.TryGetValue(_node.Input[k], out var t) || !_values.TryGetValue(_node.Input[1 - k], out var x)
                            || x.Shape.Length != 3 || t.Dims.Count != 3 || t.Dims[0] != 1 || t.Dims[1] != x.Shape[1] || t.Dims[2] != x.Shape[2]
                            || !OnnxTensors.IsFloating(t.DataType) || PatchGrid(_node.Input[1 - k], x.Shape[1]) is not { } grid) continue;
                        var name = Unique(Sanitize(t.Name) is { Length: > 0 } sn ? sn : "pos_embed");
                        int prefix = (int)(x.Shape[1] - grid.Shape[2] * grid.Shape[3]);
                        Emit(_b.Add(new PositionEmbeddingOp((int)x.Shape[2], (int)grid.Shape[2], (int)grid.Shape[3], prefix), name, x, grid));
                        _state[name] = LearnedTensor(t);
                        return true;
                    }
                    return false;
                default:
                    return false;
            }
        }

        private ConstTensor LearnedTensor(OnnxProto.TensorProto t)
        {
            var c = OnnxTensors.Decode(_file, _dir, t, $"initializer '{t.Name}'");
            return new ConstTensor(c.Shape, c.AsFloats());
        }

        /// <summary>The initializer [1, k, C] of learned tokens broadcast to the batch as Add(x·0, tokens), or null.</summary>
        private OnnxProto.TensorProto? Tokens(string value)
        {
            if (!_producers.TryGetValue(value, out var add) || add.OpType != "Add" || add.Input.Count != 2) return null;
            for (int k = 0; k < 2; k++)
            {
                if (!_initializers.TryGetValue(add.Input[k], out var t) || t.Dims.Count != 3 || t.Dims[0] != 1 || !OnnxTensors.IsFloating(t.DataType)) continue;
                if (_producers.TryGetValue(add.Input[1 - k], out var mul) && mul.OpType == "Mul" && mul.Input.Count == 2
                    && mul.Input.Any(i => TryConst(i, out var zero) && zero.Count == 1 && zero.AsFloats()[0] == 0)) return t;
            }
            return null;
        }

        /// <summary>A Concat on the token axis of learned tokens, then a token sequence [N, T, C] already computed. Decided
        /// once per node (the Adds that feed it are left out on this answer).</summary>
        private bool IsTokenConcat(OnnxProto.NodeProto concat)
        {
            if (_tokenConcats.TryGetValue(concat, out var known)) return known;
            bool tokens = concat.OpType == "Concat" && concat.Input.Count >= 2 && concat.Output.Count == 1
                && _values.TryGetValue(concat.Input[^1], out var x) && x.Shape.Length == 3
                && (concat.Attribute.FirstOrDefault(a => a.Name == "axis")?.I is 1 or -2)
                && concat.Input.SkipLast(1).All(i => _readers.GetValueOrDefault(i) == 1 && Tokens(i) is { } t && t.Dims[2] == x.Shape[2]);
            _tokenConcats[concat] = tokens;
            return tokens;
        }

        /// <summary>The patch grid [N, C', h, w] a token sequence of <paramref name="tokens"/> tokens was flattened from:
        /// the nearest rank-4 value up its chain of inputs (a Concat's last one), if it has at most that many cells and
        /// the rest (the prefix tokens) are fewer than its cells.</summary>
        private Sym? PatchGrid(string value, long tokens)
        {
            for (int step = 0; step < 8 && _producers.TryGetValue(value, out var n) && n.Input.Count > 0; step++)
            {
                value = n.OpType == "Concat" ? n.Input[^1] : n.Input[0];
                if (_values.TryGetValue(value, out var s) && s.Shape.Length == 4)
                {
                    long cells = s.Shape[2] * s.Shape[3];
                    return cells <= tokens && tokens - cells < cells && s.Name != ModelGraph.InputName ? s : null;
                }
            }
            return null;
        }

        // ------------------------------------------------------------ constant folding

        public override void Fold(Op op)
        {
            switch (op)
            {
                case BinaryOp b: EmitConst(Fold(b.Operation, Constant(0, "operand"), Constant(1, "operand"))); break;
                case ConcatOp: EmitConst(FoldConcat()); break;
                case SliceOp s: EmitConst(FoldSlice(s)); break;
                case ReshapeOp r:
                {
                    var c = Constant(0, "data");
                    var resolved = r.Resolve(c.Shape);
                    EmitConst(c.IsFloat ? new ConstTensor(resolved, c.Floats!) : new ConstTensor(resolved, c.Ints!, c.Marks));
                    break;
                }
                case SqueezeOp q: EmitConst(FoldSqueeze(q)); break;
                case UnaryOp u: EmitConst(FoldUnary(u.Function)); break;
                default: throw new UnsupportedVariant($"folding {op.Kind} on constants");
            }
        }

        private ConstTensor Fold(BinaryKind kind, ConstTensor a, ConstTensor b)
        {
            var shape = BinaryOp.Broadcast(a.Shape, b.Shape);
            long n = CheckedCount(shape);
            double Op(double x, double y) => kind switch
            {
                BinaryKind.Add => x + y, BinaryKind.Sub => x - y, BinaryKind.Mul => x * y, BinaryKind.Pow => Math.Pow(x, y), _ => x / y,
            };
            if (a.IsFloat || b.IsFloat)
            {
                var f = new float[n];
                for (long i = 0; i < n; i++) f[i] = (float)Op(a[BroadcastIndex(i, shape, a.Shape)], b[BroadcastIndex(i, shape, b.Shape)]);
                return new ConstTensor(shape, f);
            }
            var v = new long[n];
            var marks = new DimMark[n];
            for (long i = 0; i < n; i++)
            {
                long ia = BroadcastIndex(i, shape, a.Shape), ib = BroadcastIndex(i, shape, b.Shape);
                long x = (long)a[ia], y = (long)b[ib];
                v[i] = kind switch
                {
                    BinaryKind.Add => x + y, BinaryKind.Sub => x - y, BinaryKind.Mul => x * y, BinaryKind.Pow => (long)Math.Pow(x, y),
                    _ => y == 0 ? 0 : x / y,
                };
                // A dynamic dimension plus 0 or times 1 (PyTorch's exporter writes "length + past length 0") stays dynamic.
                long unit = kind is BinaryKind.Mul or BinaryKind.Div or BinaryKind.Pow ? 1 : 0;
                marks[i] = a.IsMarked(ia) && y == unit ? a.MarkOf(ia)
                    : b.IsMarked(ib) && x == unit && kind is BinaryKind.Add or BinaryKind.Mul ? b.MarkOf(ib) : DimMark.None;
            }
            return new ConstTensor(shape, v, marks.Any(m => m != DimMark.None) ? marks : null);
        }

        /// <summary>Element count of a folded constant's shape; folding stays for shape-sized constants.</summary>
        private long CheckedCount(long[] shape) => OnnxTensors.CheckedCount(_file, $"node '{_label}' ({_node.OpType}) folded to a constant that", shape);

        /// <summary>The element of an operand of shape <paramref name="from"/> that numpy broadcasting reads for element
        /// <paramref name="flat"/> of the result of shape <paramref name="to"/>.</summary>
        private static long BroadcastIndex(long flat, long[] to, long[] from)
        {
            long index = 0, stride = 1;
            int offset = to.Length - from.Length;
            for (int d = to.Length - 1; d >= 0; d--)
            {
                long coordinate = flat % to[d];
                flat /= to[d];
                int k = d - offset;
                if (k < 0) continue;
                if (from[k] != 1) index += coordinate * stride;
                stride *= from[k];
            }
            return index;
        }

        private ConstTensor FoldConcat()
        {
            var parts = Enumerable.Range(0, InputCount).Where(Has).Select(i => Constant(i, "input")).ToArray();
            if (parts.Any(p => p.Shape.Length != 1)) throw new UnsupportedVariant("folding a Concat of constants of rank other than 1");
            if (parts.Any(p => p.IsFloat)) return new ConstTensor([parts.Sum(p => p.Count)], parts.SelectMany(p => p.AsFloats()).ToArray());
            var marks = parts.SelectMany(p => Enumerable.Range(0, (int)p.Count).Select(k => p.MarkOf(k))).ToArray();
            return new ConstTensor([parts.Sum(p => p.Count)], parts.SelectMany(p => p.AsInts()).ToArray(), marks);
        }

        /// <summary>The flat element of a constant of shape <paramref name="from"/> behind each element of the result of
        /// picking <paramref name="indices"/> along <paramref name="axis"/> (Gather, Slice): for each outer block, each index,
        /// the inner block it picks.</summary>
        private long[] PickAlong(long[] from, int axis, IReadOnlyCollection<long> indices, long[] result)
        {
            long outer = from[..axis].Aggregate(1L, (p, d) => p * d), inner = from[(axis + 1)..].Aggregate(1L, (p, d) => p * d), dim = from[axis];
            var source = new long[CheckedCount(result)];
            long k = 0;
            for (long o = 0; o < outer; o++)
                foreach (var i in indices)
                    for (long r = 0; r < inner; r++)
                        source[k++] = (o * dim + i) * inner + r;
            return source;
        }

        private ConstTensor FoldSlice(SliceOp op)
        {
            var c = Constant(0, "data");
            int axis = op.Axis;
            if (axis < 0 || axis >= c.Shape.Length) throw new OnnxException(_file, $"node '{_label}': axis {axis} is outside a rank-{c.Shape.Length} constant");
            long dim = c.Shape[axis];
            var (s, e) = op.Clamp(dim);
            var idx = new List<long>();
            for (long i = s; op.Step > 0 ? i < e : i > e; i += op.Step) idx.Add(i);
            var shape = (long[])c.Shape.Clone();
            shape[axis] = idx.Count;
            var source = PickAlong(c.Shape, axis, idx, shape);
            // Cut from the start to the sequence length (BERT's position ids): its length follows the input's.
            bool toSequence = _opset >= 10 && Has(2) && IsConstant(2) && Constant(2, "ends") is { Count: 1 } end
                && end.MarkOf(0) == DimMark.Sequence && s == 0 && op.Step == 1;
            return c.IsFloat
                ? new ConstTensor(shape, source.Select(j => c.Floats![j]).ToArray()) { SequenceAxis = toSequence ? axis : null }
                : new ConstTensor(shape, source.Select(j => c.Ints![j]).ToArray(), source.Select(c.MarkOf).ToArray()) { SequenceAxis = toSequence ? axis : null };
        }

        private ConstTensor FoldSqueeze(SqueezeOp op)
        {
            var c = Constant(0, "data");
            long[] shape;
            if (op.Unsqueeze)
            {
                var list = c.Shape.ToList();
                int rank = list.Count + op.Axes.Length;
                foreach (var a in op.Axes.Select(a => Norm(a, rank)).Order()) list.Insert(a, 1);
                shape = list.ToArray();
            }
            else
            {
                var drop = op.Axes.Select(a => Norm(a, c.Shape.Length)).ToHashSet();
                shape = c.Shape.Where((_, i) => !drop.Contains(i)).ToArray();
            }
            return c.IsFloat ? new ConstTensor(shape, c.Floats!) : new ConstTensor(shape, c.Ints!, c.Marks);
        }

        private ConstTensor FoldUnary(UnaryKind kind)
        {
            var c = Constant(0, "input");
            Func<double, double> f = kind switch
            {
                UnaryKind.Sqrt => Math.Sqrt,
                UnaryKind.Exp => Math.Exp,
                UnaryKind.Log => Math.Log,
                UnaryKind.Abs => Math.Abs,
                UnaryKind.Neg => v => -v,
                UnaryKind.Reciprocal => v => 1 / v,
                _ => throw new UnsupportedVariant("Erf of a constant"),
            };
            return new ConstTensor(c.Shape, c.AsFloats().Select(v => (float)f(v)).ToArray());
        }

        // ------------------------------------------------------------ machinery ops (no IR op of their own)


        private void Split()
        {
            var x = Value(0);
            int axis = Norm(Int("axis", 0), x.Shape.Length);
            long dim = x.Shape[axis];
            long[] sizes;
            if (Ints("split") is { } attr) sizes = attr;
            else if (_opset >= 13 && Has(1)) sizes = Constant(1, "split").AsInts();
            else
            {
                int parts = _opset >= 18 && Attr("num_outputs") is { } no ? (int)no.I : _node.Output.Count;
                long chunk = (dim + parts - 1) / parts;
                sizes = Enumerable.Range(0, parts).Select(k => Math.Max(0, Math.Min(chunk, dim - k * chunk))).ToArray();
            }
            if (sizes.Sum() != dim) throw new OnnxException(_file, $"node '{_label}': split sizes [{string.Join(",", sizes)}] do not add up to {dim}");
            var baseName = NodeName();
            long start = 0;
            for (int o = 0; o < sizes.Length && o < _node.Output.Count; o++)
            {
                var name = o == 0 ? baseName : Extra(baseName, o.ToString(CultureInfo.InvariantCulture));
                Emit(_b.Add(new SliceOp(axis, start, start + sizes[o]), name, x), o);
                start += sizes[o];
            }
        }

        private void ConstantNode()
        {
            if (Attr("value") is { } v) EmitConst(OnnxTensors.Decode(_file, _dir, v.T, $"constant '{_label}'"));
            else if (Attr("value_float") is { } f) EmitConst(new ConstTensor([], [f.F]));
            else if (Attr("value_floats") is { } fs) EmitConst(new ConstTensor([fs.Floats.Count], fs.Floats.ToArray()));
            else if (Attr("value_int") is { } i) EmitConst(new ConstTensor([], [i.I]));
            else if (Attr("value_ints") is { } ints) EmitConst(new ConstTensor([ints.Ints.Count], ints.Ints.ToArray()));
            else throw new UnsupportedVariant("Constant without a value, value_float(s) or value_int(s)");
        }

        private void Shape()
        {
            long[] shape;
            bool batched;
            if (_values.TryGetValue(_node.Input[0], out var s)) { shape = s.Shape; batched = true; }
            else { shape = Constant(0, "data").Shape; batched = false; }
            int rank = shape.Length;
            int start = Norm(Int("start", 0), rank), end = Attr("end") is { } e ? Norm(e.I, rank) : rank;
            start = Math.Clamp(start, 0, rank);
            end = Math.Clamp(end, start, rank);
            var values = shape[start..end];
            // Dimension 0 of a value is the batch; with token inputs traced at a sequence length no other dimension has,
            // a later dimension of that length is the sequence.
            var marks = Enumerable.Range(start, end - start)
                .Select(i => !batched ? DimMark.None : i == 0 ? DimMark.Batch : shape[i] == _sequenceLength ? DimMark.Sequence : DimMark.None).ToArray();
            EmitConst(new ConstTensor([values.Length], values, marks));
        }

        private void Gather()
        {
            int axisAttr = (int)Int("axis", 0);
            if (IsConstant(0) && Norm(axisAttr, Constant(0, "data").Shape.Length) == 0 && Constant(0, "data") is { IsFloat: true, Shape.Length: 2 } table
                && (!IsConstant(1) || Constant(1, "indices").SequenceAxis is not null))
            {
                Embedding(table);
                return;
            }
            var indices = Constant(1, "indices");
            if (IsConstant(0))
            {
                var data = Constant(0, "data");
                if (data.Shape.Length == 0) throw new OnnxException(_file, $"node '{_label}': Gather of a scalar");
                int at = Norm(axisAttr, data.Shape.Length);
                if (at < 0 || at >= data.Shape.Length) throw new OnnxException(_file, $"node '{_label}': axis {axisAttr} is outside a rank-{data.Shape.Length} tensor");
                long dim = data.Shape[at];
                var idx = indices.AsInts().Select(i => i < 0 ? i + dim : i).ToArray();
                if (idx.Any(i => i < 0 || i >= dim)) throw new OnnxException(_file, $"node '{_label}': gather index out of range [{-dim}, {dim - 1}]");
                // Result [data[:axis], indices, data[axis+1:]].
                long[] shape = [.. data.Shape[..at], .. indices.Shape, .. data.Shape[(at + 1)..]];
                var source = PickAlong(data.Shape, at, idx, shape);
                EmitConst(data.IsFloat
                    ? new ConstTensor(shape, source.Select(j => data.Floats![j]).ToArray())
                    : new ConstTensor(shape, source.Select(j => data.Ints![j]).ToArray(), source.Select(data.MarkOf).ToArray()));
                return;
            }
            // On a value: a scalar index is a slice and a squeeze; contiguous indices are a slice.
            var x = Value(0);
            int axis = Norm(axisAttr, x.Shape.Length);
            var ids = indices.AsInts().Select(i => i < 0 ? i + x.Shape[axis] : i).ToArray();
            bool contiguous = ids.Length > 0 && ids.Zip(ids.Skip(1)).All(p => p.Second == p.First + 1);
            if (!contiguous || indices.Shape.Length > 1) throw new UnsupportedVariant("Gather of non-contiguous indices on a computed tensor");
            var name = NodeName();
            var sliced = _b.Add(new SliceOp(axis, ids[0], ids[^1] + 1), name, x);
            if (indices.Shape.Length == 0) sliced = _b.Add(new SqueezeOp([axis]), Extra(name, "squeeze"), sliced);
            Emit(sliced);
        }

        /// <summary>A float table [rows, dim] gathered along its rows is an embedding lookup, its table trainable: by
        /// computed indices (token ids, token types), or by position ids cut to the sequence length, which become the
        /// positions of the main token input.</summary>
        private void Embedding(ConstTensor table)
        {
            int rows = (int)table.Shape[0], dim = (int)table.Shape[1];
            var name = NodeName(0);
            if (IsConstant(1))
            {
                var ids = Constant(1, "indices");
                bool positions = ids.Shape is [1, var t] && t == _sequenceLength && ids.SequenceAxis == 1
                    && ids.AsInts().Select((v, i) => v == i).All(b => b);
                if (!positions) throw new UnsupportedVariant("Gather of constant indices cut to the sequence length that are not the positions 0, 1, …");
                Emit(AddWithState(new EmbeddingOp(rows, dim, Positions: true), name, _b.Input, ("weight", table)));
                return;
            }
            var x = Value(1);
            if (!_integers.Contains(_node.Input[1])) throw new UnsupportedVariant("Gather of a float table by computed float indices");
            Emit(AddWithState(new EmbeddingOp(rows, dim), name, x, ("weight", table)));
        }

        /// <summary>Equal folds on constants (shape arithmetic of exported graphs: "is this dimension -1?"); the graph has no
        /// boolean tensors to compute it at run time.</summary>
        private void Equal()
        {
            if (!IsConstant(0) || !IsConstant(1)) throw new UnsupportedVariant("Equal of a computed tensor (only constants fold)");
            ConstTensor a = Constant(0, "A"), b = Constant(1, "B");
            var shape = BinaryOp.BroadcastShapes(a.Shape, b.Shape) ?? throw new OnnxException(_file, $"node '{_label}': shapes [{string.Join(",", a.Shape)}] and [{string.Join(",", b.Shape)}] do not broadcast");
            var v = new long[CheckedCount(shape)];
            for (long i = 0; i < v.Length; i++) v[i] = a[BroadcastIndex(i, shape, a.Shape)] == b[BroadcastIndex(i, shape, b.Shape)] ? 1 : 0;
            EmitConst(new ConstTensor(shape, v));
        }

        /// <summary>Where folds on a constant condition and constant operands; a chosen element that is the batch size
        /// stays marked as such.</summary>
        private void Where()
        {
            if (!IsConstant(0) || !IsConstant(1) || !IsConstant(2)) throw new UnsupportedVariant("Where with a computed condition or operand (only constants fold)");
            ConstTensor c = Constant(0, "condition"), x = Constant(1, "X"), y = Constant(2, "Y");
            var shape = BinaryOp.BroadcastShapes(c.Shape, x.Shape) is { } cx ? BinaryOp.BroadcastShapes(cx, y.Shape) : null;
            if (shape is null) throw new OnnxException(_file, $"node '{_label}': condition, X and Y do not broadcast together");
            long n = CheckedCount(shape);
            var pick = new (ConstTensor From, long At)[n];
            for (long i = 0; i < n; i++)
                pick[i] = c[BroadcastIndex(i, shape, c.Shape)] != 0 ? (x, BroadcastIndex(i, shape, x.Shape)) : (y, BroadcastIndex(i, shape, y.Shape));
            EmitConst(x.IsFloat || y.IsFloat
                ? new ConstTensor(shape, pick.Select(p => (float)p.From[p.At]).ToArray())
                : new ConstTensor(shape, pick.Select(p => (long)p.From[p.At]).ToArray(), pick.Select(p => p.From.MarkOf(p.At)).ToArray()));
        }

        /// <summary>ConstantOfShape folds on a constant shape that does not hold the batch size.</summary>
        private void ConstantOfShape()
        {
            var target = Constant(0, "shape");
            if (Enumerable.Range(0, (int)target.Count).Any(i => target.IsMarked(i)))
                throw new UnsupportedVariant("ConstantOfShape of a shape holding the batch size (a tensor that changes with the batch)");
            var shape = target.AsInts();
            if (shape.Any(d => d < 0)) throw new OnnxException(_file, $"node '{_label}': negative dimension in shape [{string.Join(",", shape)}]");
            long n = CheckedCount(shape);
            var value = Attr("value") is { } v ? OnnxTensors.Decode(_file, _dir, v.T, $"value of '{_label}'") : new ConstTensor([1], new float[1]);
            if (value.Count != 1) throw new OnnxException(_file, $"node '{_label}': value holds {value.Count} elements, not one");
            EmitConst(value.IsFloat ? new ConstTensor(shape, Enumerable.Repeat(value.Floats![0], (int)n).ToArray())
                : new ConstTensor(shape, Enumerable.Repeat(value.Ints![0], (int)n).ToArray()));
        }

        private void Cast()
        {
            int to = (int)Int("to", 1);
            if (IsConstant(0))
            {
                var c = Constant(0, "input");
                EmitConst(OnnxTensors.IsFloating(to) ? new ConstTensor(c.Shape, c.AsFloats()) : new ConstTensor(c.Shape, c.AsInts(), c.Marks));
                return;
            }
            bool integerInput = _integers.Contains(_node.Input[0]);
            if (!OnnxTensors.IsFloating(to))
            {
                if (!integerInput) throw new UnsupportedVariant($"Cast of a computed tensor to {OnnxTensors.TypeName(to)}");
                Alias();
                _integers.Add(_node.Output[0]);
                return;
            }
            if (integerInput)
            {
                // A token input's mask becomes the float32 the graph computes with.
                Emit(_b.Add(new CastOp(ElementType.Float32), NodeName(), Value(0)));
                return;
            }
            // The graph computes in float32: a cast to a narrower float would round, which passing the value through does not.
            if ((OnnxProto.TensorProto.Types.DataType)to is OnnxProto.TensorProto.Types.DataType.Float16 or OnnxProto.TensorProto.Types.DataType.Bfloat16)
                throw new UnsupportedVariant($"Cast of a computed tensor to {OnnxTensors.TypeName(to)} (the graph computes in float32 and would not round)");
            Alias();
        }
    }
}
