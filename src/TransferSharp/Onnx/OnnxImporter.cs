using System.Globalization;
using System.Text;
using TransferSharp.Vision.Graph;
using OnnxProto = global::Onnx;

namespace TransferSharp.Onnx;

/// <summary>
/// Imports an ONNX file (opsets 7–21) as a layer graph with trainable parameters. Covers the
/// operators CNNs exported by PyTorch, tf2onnx and CNTK use; anything else is reported by op type,
/// node name and opset before any weight is read. Shape computations on constants (Shape, Gather,
/// Unsqueeze, Concat, …) are folded at import, keeping the batch dimension dynamic.
/// </summary>
public static class OnnxImporter
{
    /// <summary>The ONNX operators the importer translates (default domain).</summary>
    public static IReadOnlyCollection<string> SupportedOperators { get; } = new SortedSet<string>(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
        "Tanh", "Elu", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Sub", "Mul", "Div",
        "Sum", "Concat", "Split", "Slice", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gemm", "MatMul", "Pad",
        "Dropout", "Identity", "Constant", "Shape", "Gather", "Cast",
        "ReduceMean", "ReduceMax", "Sqrt", "Erf", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Max", "Min", "Gelu",
    };

    /// <summary>Imports a file. Raises <see cref="OnnxUnsupportedException"/> listing every node it
    /// cannot translate, and <see cref="OnnxException"/> for corrupt or malformed files.</summary>
    public static OnnxModel Import(string path, OnnxImportOptions? options = null)
    {
        options ??= new OnnxImportOptions();
        path = Path.GetFullPath(path);
        var model = OnnxModelFile.Read(path);
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
    private sealed class Converter
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
        private GraphBuilder _b = null!;
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
            if (inputs.Count != 1)
                throw new OnnxException(_file, $"has {inputs.Count} graph inputs ({string.Join(", ", inputs.Select(i => i.Name))}); the importer takes models with one image input");
            var input = inputs[0];
            var dims = input.Type?.TensorType?.Shape?.Dim.ToList()
                ?? throw new OnnxException(_file, $"input '{input.Name}' is not a tensor with a known rank");
            if (dims.Count != 4) throw new OnnxException(_file, $"input '{input.Name}' has rank {dims.Count}; the importer takes image inputs [N, C, H, W]");
            long Dim(int i, long fallback) => dims[i].HasDimValue && dims[i].DimValue > 0 ? dims[i].DimValue : fallback;
            long channels = Dim(1, -1);
            if (channels <= 0) throw new OnnxException(_file, $"input '{input.Name}' leaves the channel count dynamic");
            var name = _options.Name ?? Path.GetFileNameWithoutExtension(_file);
            _b = new GraphBuilder(name, (int)channels, (int)Dim(2, _options.ImageSize), (int)Dim(3, _options.ImageSize));
            _values[input.Name] = _b.Input;
            _nodeNames[input.Name] = ModelGraph.InputName;

            foreach (var n in order) foreach (var i in n.Input) _consumed.Add(i);
            foreach (var o in g.Output) _consumed.Add(o.Name);

            for (int i = 0; i < order.Count; i++)
            {
                _node = order[i];
                _label = NodeLabel(_node, i);
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
            var state = _state.Where(kv => needed.Contains(kv.Key[..kv.Key.LastIndexOf('.')]))
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

        private int Inputs => _node.Input.Count;

        private bool Has(int i) => i < _node.Input.Count && _node.Input[i].Length > 0;

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

        private bool IsConst(int i) => Has(i) && (_consts.ContainsKey(_node.Input[i]) || _initializers.ContainsKey(_node.Input[i]));

        private ConstTensor Const(int i, string what)
        {
            if (!Has(i)) throw new UnsupportedVariant($"{what} is missing");
            if (!TryConst(_node.Input[i], out var v)) throw new UnsupportedVariant($"{what} ('{_node.Input[i]}') is computed at run time; only constant {what}s are supported");
            return v;
        }

        private ConstTensor? OptionalConst(int i, string what) => Has(i) ? Const(i, what) : null;

        /// <summary>The graph value of an input; a constant becomes a ConstantOp node holding it as a buffer.</summary>
        private Sym Value(int i)
        {
            if (i >= _node.Input.Count)
                throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}) has {_node.Input.Count} input(s); input {i + 1} is required");
            var name = _node.Input[i];
            if (_values.TryGetValue(name, out var s)) return s;
            if (!TryConst(name, out var c)) throw new OnnxException(_file, $"node '{_label}' reads '{name}', which has no value");
            var nodeName = Unique(Sanitize(name) is { Length: > 0 } sn ? sn : "const");
            _state[nodeName + ".value"] = new ConstTensor(c.Shape, c.AsFloats());
            var sym = _b.Add(new ConstantOp(c.Shape), nodeName);
            _values[name] = sym;
            return sym;
        }

        private void Emit(Sym s, int output = 0)
        {
            if (output >= _node.Output.Count) return;
            var name = _node.Output[output];
            _values[name] = s;
            _nodeNames.TryAdd(name, s.Name);
            if (output == 0 && _node.Name.Length > 0) _nodeNames.TryAdd(_node.Name, s.Name);
        }

        private void EmitConst(ConstTensor c, int output = 0)
        {
            if (output < _node.Output.Count) _consts[_node.Output[output]] = c;
        }

        private void Alias(int input = 0)
        {
            if (input >= _node.Input.Count)
                throw new OnnxException(_file, $"node '{_label}' ({_node.OpType}) has {_node.Input.Count} input(s); input {input + 1} is required");
            var name = _node.Input[input];
            if (_values.TryGetValue(name, out var s)) Emit(s);
            else if (TryConst(name, out var c)) EmitConst(c);
        }

        private void RequireUnusedOutputs(int from)
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
        private string NodeName(int weightInput = -1)
        {
            if (weightInput >= 0 && Has(weightInput))
            {
                var w = _node.Input[weightInput];
                foreach (var suffix in new[] { ".weight", ".running_mean" })
                {
                    if (!w.EndsWith(suffix, StringComparison.Ordinal)) continue;
                    var path = w[..^suffix.Length];
                    if (path.Split('.').All(seg => seg.Length > 0 && seg.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) && path != ModelGraph.InputName && !_used.Contains(path))
                        return Unique(path);
                }
            }
            var s = Sanitize(_node.Name);
            if (s.Length == 0 && _node.Output.Count > 0) s = Sanitize(_node.Output[0]);
            return Unique(s);
        }

        private string Extra(string baseName, string suffix) => Unique(baseName + "_" + suffix);

        // ------------------------------------------------------------ attributes

        private OnnxProto.AttributeProto? Attr(string name) => _node.Attribute.FirstOrDefault(a => a.Name == name);

        private long Int(string name, long fallback) => Attr(name) is { } a ? a.I : fallback;

        private float Float(string name, float fallback) => Attr(name) is { } a ? a.F : fallback;

        private long[]? Ints(string name) => Attr(name) is { } a ? a.Ints.ToArray() : null;

        private string? Str(string name) => Attr(name) is { } a ? a.S.ToStringUtf8() : null;

        private static int Norm(long axis, int rank) => (int)(axis < 0 ? axis + rank : axis);

        // ------------------------------------------------------------ translation

        private void Convert()
        {
            switch (_node.OpType)
            {
                case "Conv": Conv(); break;
                case "ConvTranspose": ConvTranspose(); break;
                case "BatchNormalization": BatchNorm(); break;
                case "Relu": Act(ActivationKind.Relu); break;
                case "LeakyRelu": Act(ActivationKind.LeakyRelu, Float("alpha", 0.01f)); break;
                case "Elu": Act(ActivationKind.Elu, Float("alpha", 1f)); break;
                case "Sigmoid": Act(ActivationKind.Sigmoid); break;
                case "Tanh": Act(ActivationKind.Tanh); break;
                case "HardSigmoid": Act(ActivationKind.HardSigmoid, Float("alpha", 0.2f), Float("beta", 0.5f)); break;
                case "HardSwish": Act(ActivationKind.HardSwish); break;
                case "Clip": Clip(); break;
                case "Softmax": Softmax(); break;
                case "MaxPool": Pool(PoolKind.Max); break;
                case "AveragePool": Pool(PoolKind.Avg); break;
                case "GlobalAveragePool": Emit(_b.Add(new GlobalPoolOp(PoolKind.Avg, true), NodeName(), Value(0))); break;
                case "GlobalMaxPool": Emit(_b.Add(new GlobalPoolOp(PoolKind.Max, true), NodeName(), Value(0))); break;
                case "Add": Binary(BinaryKind.Add); break;
                case "Sub": Binary(BinaryKind.Sub); break;
                case "Mul": Binary(BinaryKind.Mul); break;
                case "Div": Binary(BinaryKind.Div); break;
                case "Sum": Sum(); break;
                case "Concat": Concat(); break;
                case "Split": Split(); break;
                case "Slice": Slice(); break;
                case "Flatten": Flatten(); break;
                case "Reshape": Reshape(); break;
                case "Transpose": Transpose(); break;
                case "Squeeze": Squeeze(false); break;
                case "Unsqueeze": Squeeze(true); break;
                case "Gemm": Gemm(); break;
                case "MatMul": MatMul(); break;
                case "Pad": Pad(); break;
                case "Dropout": Dropout(); break;
                case "Identity": Alias(); break;
                case "Constant": Constant(); break;
                case "Shape": Shape(); break;
                case "Gather": Gather(); break;
                case "Cast": Cast(); break;
                case "ReduceMean": Reduce(PoolKind.Avg); break;
                case "ReduceMax": Reduce(PoolKind.Max); break;
                case "Sqrt": Unary(UnaryKind.Sqrt); break;
                case "Erf": Unary(UnaryKind.Erf); break;
                case "Exp": Unary(UnaryKind.Exp); break;
                case "Log": Unary(UnaryKind.Log); break;
                case "Abs": Unary(UnaryKind.Abs); break;
                case "Neg": Unary(UnaryKind.Neg); break;
                case "Reciprocal": Unary(UnaryKind.Reciprocal); break;
                case "Max": Extremum(true); break;
                case "Min": Extremum(false); break;
                case "Gelu":
                    if ((Str("approximate") ?? "none") != "none") throw new UnsupportedVariant("tanh-approximated GELU");
                    Act(ActivationKind.Gelu);
                    break;
                default: throw new UnsupportedVariant("operator not supported");
            }
        }

        private PadSpec Padding(int rank)
        {
            var autoPad = Str("auto_pad") ?? "NOTSET";
            switch (autoPad)
            {
                case "SAME_UPPER": return new PadSpec(PadKind.SameUpper);
                case "SAME_LOWER": return new PadSpec(PadKind.SameLower);
                case "VALID": return PadSpec.None;
                case "NOTSET" or "": break;
                default: throw new UnsupportedVariant($"auto_pad '{autoPad}'");
            }
            var pads = Ints("pads") ?? new long[2 * rank];
            if (pads.Length != 4) throw new UnsupportedVariant($"pads of length {pads.Length}; only 2-D windows are supported");
            if (pads.Any(p => p < 0)) throw new UnsupportedVariant("negative pads");
            return new PadSpec(PadKind.Explicit, (int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]);
        }

        private static Size2 Pair(long[]? v, int fallback, string what)
        {
            if (v is null) return new Size2(fallback, fallback);
            if (v.Length != 2) throw new UnsupportedVariant($"{what} of length {v.Length}; only 2-D windows are supported");
            return new Size2((int)v[0], (int)v[1]);
        }

        private void Conv()
        {
            var x = Value(0);
            var w = Const(1, "weight");
            if (w.Shape.Length != 4 || x.Shape.Length != 4) throw new UnsupportedVariant($"{w.Shape.Length - 2}-D convolution; only 2-D is supported");
            var kernel = Pair(Ints("kernel_shape") ?? w.Shape[2..], 1, "kernel_shape");
            if (kernel.H != w.Shape[2] || kernel.W != w.Shape[3]) throw new OnnxException(_file, $"node '{_label}': kernel_shape {kernel} differs from the weight's [{string.Join(",", w.Shape)}]");
            int groups = (int)Int("group", 1);
            if (w.Shape[1] * groups != x.Shape[1])
                throw new OnnxException(_file, $"node '{_label}': weight [{string.Join(",", w.Shape)}] with group {groups} does not take {x.Shape[1]} input channels");
            var bias = OptionalConst(2, "bias");
            var name = NodeName(1);
            var op = new Conv2dOp((int)x.Shape[1], (int)w.Shape[0], kernel, Pair(Ints("strides"), 1, "strides"), Padding(2),
                Pair(Ints("dilations"), 1, "dilations"), groups, bias is not null);
            _state[name + ".weight"] = w;
            if (bias is not null) _state[name + ".bias"] = new ConstTensor([w.Shape[0]], bias.AsFloats());
            Emit(_b.Add(op, name, x));
        }

        private void ConvTranspose()
        {
            var x = Value(0);
            var w = Const(1, "weight");
            if (w.Shape.Length != 4 || x.Shape.Length != 4) throw new UnsupportedVariant("only 2-D transposed convolution is supported");
            if (Attr("output_shape") is not null) throw new UnsupportedVariant("output_shape (give pads and output_padding instead)");
            if ((Str("auto_pad") ?? "NOTSET") is not ("NOTSET" or "" or "VALID")) throw new UnsupportedVariant("auto_pad SAME on ConvTranspose");
            int groups = (int)Int("group", 1);
            var bias = OptionalConst(2, "bias");
            var name = NodeName(1);
            var op = new ConvTranspose2dOp((int)x.Shape[1], (int)w.Shape[1] * groups, Pair(Ints("kernel_shape") ?? w.Shape[2..], 1, "kernel_shape"),
                Pair(Ints("strides"), 1, "strides"), Padding(2), Pair(Ints("output_padding"), 0, "output_padding"),
                Pair(Ints("dilations"), 1, "dilations"), groups, bias is not null);
            _state[name + ".weight"] = w;
            if (bias is not null) _state[name + ".bias"] = new ConstTensor([op.OutChannels], bias.AsFloats());
            Emit(_b.Add(op, name, x));
        }

        private void BatchNorm()
        {
            var x = Value(0);
            var scale = Const(1, "scale");
            var shift = Const(2, "bias");
            var mean = Const(3, "mean");
            var var = Const(4, "variance");
            RequireUnusedOutputs(1);
            long c = x.Shape[1];
            foreach (var t in new[] { scale, shift, mean, var })
                if (t.Count != c) throw new UnsupportedVariant($"per-position statistics (spatial=0, shape [{string.Join(",", t.Shape)}]); only per-channel is supported");
            // ONNX: running = running·momentum + batch·(1 − momentum); PyTorch's momentum is the other weight.
            double momentum = Math.Clamp(1.0 - Float("momentum", 0.9f), 1e-6, 1.0);
            var name = NodeName(3);
            var op = new BatchNormOp((int)c, Float("epsilon", 1e-5f), momentum);
            _state[name + ".weight"] = new ConstTensor([c], scale.AsFloats());
            _state[name + ".bias"] = new ConstTensor([c], shift.AsFloats());
            _state[name + ".running_mean"] = new ConstTensor([c], mean.AsFloats());
            _state[name + ".running_var"] = new ConstTensor([c], var.AsFloats());
            Emit(_b.Add(op, name, x));
        }

        private void Act(ActivationKind kind, double alpha = 0, double beta = 0) =>
            Emit(_b.Add(new ActivationOp(kind, alpha, beta), NodeName(), Value(0)));

        private void Clip()
        {
            double lo, hi;
            if (_opset < 11)
            {
                lo = Float("min", float.MinValue);
                hi = Float("max", float.MaxValue);
            }
            else
            {
                lo = OptionalConst(1, "min") is { } a ? a[0] : float.MinValue;
                hi = OptionalConst(2, "max") is { } b ? b[0] : float.MaxValue;
            }
            if (lo == 0 && hi == 6) Act(ActivationKind.Relu6);
            else Act(ActivationKind.Clip, lo, hi);
        }

        private void Softmax()
        {
            var x = Value(0);
            int rank = x.Shape.Length;
            int axis = Norm(Int("axis", _opset < 13 ? 1 : -1), rank);
            // Before opset 13, Softmax flattened the input to 2-D at the axis: the same as a softmax over
            // that axis only when every later dimension has size 1.
            if (_opset < 13 && axis != rank - 1 && x.Shape[(axis + 1)..].Any(d => d != 1))
                throw new UnsupportedVariant($"opset-{_opset} softmax over the flattened dimensions {axis}.. of shape [{string.Join(",", x.Shape)}]");
            Emit(_b.Add(new SoftmaxOp(axis), NodeName(), x));
        }

        private void Pool(PoolKind kind)
        {
            var x = Value(0);
            RequireUnusedOutputs(1);
            if (x.Shape.Length != 4) throw new UnsupportedVariant("only 2-D pooling is supported");
            var kernel = Pair(Ints("kernel_shape") ?? throw new OnnxException(_file, $"node '{_label}': kernel_shape is missing"), 1, "kernel_shape");
            var stride = Pair(Ints("strides"), 1, "strides");
            var dilation = Pair(Ints("dilations"), 1, "dilations");
            bool ceil = Int("ceil_mode", 0) != 0;
            bool includePad = Int("count_include_pad", 0) != 0;
            if (kind == PoolKind.Avg && dilation != new Size2(1, 1)) throw new UnsupportedVariant("dilated average pooling");
            var op = new Pool2dOp(kind, kernel, stride, Padding(2), ceil, includePad, dilation);
            Emit(_b.Add(op, NodeName(), x));
        }

        private void Binary(BinaryKind kind)
        {
            bool c0 = IsConst(0), c1 = IsConst(1);
            if (c0 && c1)
            {
                EmitConst(Fold(kind, Const(0, "operand"), Const(1, "operand")));
                return;
            }
            // A scalar constant on a value: an affine ScaleOp (no extra node, exact for Add/Sub/Mul).
            if (c1 && Const(1, "operand") is { Count: 1 } s1 && s1.Shape.Length <= _values[_node.Input[0]].Shape.Length)
            {
                double v = s1[0];
                var (scale, shift) = kind switch
                {
                    BinaryKind.Add => (1.0, v),
                    BinaryKind.Sub => (1.0, -v),
                    BinaryKind.Mul => (v, 0.0),
                    _ => (1.0 / v, 0.0),
                };
                if (kind != BinaryKind.Div || double.IsFinite(scale))
                {
                    Emit(_b.Add(new ScaleOp(scale, shift), NodeName(), Value(0)));
                    return;
                }
            }
            if (c0 && Const(0, "operand") is { Count: 1 } s0 && kind is BinaryKind.Add or BinaryKind.Sub or BinaryKind.Mul
                && s0.Shape.Length <= _values[_node.Input[1]].Shape.Length)
            {
                double v = s0[0];
                var (scale, shift) = kind switch { BinaryKind.Add => (1.0, v), BinaryKind.Sub => (-1.0, v), _ => (v, 0.0) };
                Emit(_b.Add(new ScaleOp(scale, shift), NodeName(), Value(1)));
                return;
            }
            var a = Value(0);
            var b = Value(1);
            Emit(_b.Add(new BinaryOp(kind), NodeName(), a, b));
        }

        private void Sum()
        {
            if (Inputs == 1) { Alias(); return; }
            var xs = Enumerable.Range(0, Inputs).Select(Value).ToArray();
            Emit(_b.Add(new BinaryOp(BinaryKind.Add), NodeName(), xs));
        }

        private ConstTensor Fold(BinaryKind kind, ConstTensor a, ConstTensor b)
        {
            var shape = BinaryOp.Broadcast(a.Shape, b.Shape);
            long n = 1;
            foreach (var d in shape) n *= d;
            if (a.Count != n && a.Count != 1 || b.Count != n && b.Count != 1)
                throw new UnsupportedVariant("constant folding with general broadcasting");
            double Op(double x, double y) => kind switch { BinaryKind.Add => x + y, BinaryKind.Sub => x - y, BinaryKind.Mul => x * y, _ => x / y };
            if (a.IsFloat || b.IsFloat)
            {
                var f = new float[n];
                for (long i = 0; i < n; i++) f[i] = (float)Op(a[a.Count == 1 ? 0 : i], b[b.Count == 1 ? 0 : i]);
                return new ConstTensor(shape, f);
            }
            var v = new long[n];
            for (long i = 0; i < n; i++)
            {
                long x = (long)a[a.Count == 1 ? 0 : i], y = (long)b[b.Count == 1 ? 0 : i];
                v[i] = kind switch { BinaryKind.Add => x + y, BinaryKind.Sub => x - y, BinaryKind.Mul => x * y, _ => y == 0 ? 0 : x / y };
            }
            return new ConstTensor(shape, v);
        }

        private void Concat()
        {
            long axisAttr = Int("axis", long.MinValue);
            if (axisAttr == long.MinValue) throw new OnnxException(_file, $"node '{_label}': Concat needs an axis");
            var present = Enumerable.Range(0, Inputs).Where(Has).ToArray();
            if (present.All(IsConst))
            {
                var parts = present.Select(i => Const(i, "input")).ToArray();
                if (parts.Any(p => p.Shape.Length != 1)) throw new UnsupportedVariant("folding a Concat of constants of rank other than 1");
                if (parts.Any(p => p.IsFloat))
                {
                    EmitConst(new ConstTensor([parts.Sum(p => p.Count)], parts.SelectMany(p => p.AsFloats()).ToArray()));
                }
                else
                {
                    var marks = parts.SelectMany(p => Enumerable.Range(0, (int)p.Count).Select(k => p.IsMarked(k))).ToArray();
                    EmitConst(new ConstTensor([parts.Sum(p => p.Count)], parts.SelectMany(p => p.AsInts()).ToArray(), marks));
                }
                return;
            }
            var xs = present.Select(Value).ToArray();
            if (xs.Length == 1) { Emit(xs[0]); return; }
            Emit(_b.Add(new ConcatOp(Norm(axisAttr, xs[0].Shape.Length)), NodeName(), xs));
        }

        private void Split()
        {
            var x = Value(0);
            int axis = Norm(Int("axis", 0), x.Shape.Length);
            long dim = x.Shape[axis];
            long[] sizes;
            if (Ints("split") is { } attr) sizes = attr;
            else if (_opset >= 13 && Has(1)) sizes = Const(1, "split").AsInts();
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

        private void Slice()
        {
            long[] starts, ends;
            long[]? axes, steps = null;
            if (_opset < 10)
            {
                starts = Ints("starts") ?? throw new OnnxException(_file, $"node '{_label}': starts missing");
                ends = Ints("ends") ?? throw new OnnxException(_file, $"node '{_label}': ends missing");
                axes = Ints("axes");
            }
            else
            {
                starts = Const(1, "starts").AsInts();
                ends = Const(2, "ends").AsInts();
                axes = OptionalConst(3, "axes")?.AsInts();
                steps = OptionalConst(4, "steps")?.AsInts();
            }
            axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
            if (IsConst(0))
            {
                var c = Const(0, "data");
                if (c.Shape.Length != 1 || starts.Length != 1) throw new UnsupportedVariant("folding a Slice of a constant of rank other than 1");
                var op = new SliceOp(0, starts[0], ends[0], steps[0]);
                var (s, e) = op.Clamp(c.Count);
                var idx = new List<long>();
                for (long i = s; steps[0] > 0 ? i < e : i > e; i += steps[0]) idx.Add(i);
                EmitConst(c.IsFloat
                    ? new ConstTensor([idx.Count], idx.Select(i => c.Floats![i]).ToArray())
                    : new ConstTensor([idx.Count], idx.Select(i => c.Ints![i]).ToArray(), idx.Select(c.IsMarked).ToArray()));
                return;
            }
            var x = Value(0);
            var baseName = NodeName();
            for (int k = 0; k < starts.Length; k++)
            {
                var name = k == 0 ? baseName : Extra(baseName, k.ToString(CultureInfo.InvariantCulture));
                int axis = Norm(axes[k], x.Shape.Length);
                // INT64_MAX/MIN are ONNX's "to the end"; SliceOp clamps them.
                x = _b.Add(new SliceOp(axis, Math.Clamp(starts[k], -(1L << 62), 1L << 62), Math.Clamp(ends[k], -(1L << 62), 1L << 62), steps[k]), name, x);
            }
            Emit(x);
        }

        private void Flatten()
        {
            var x = Value(0);
            int axis = Norm(Int("axis", 1), x.Shape.Length);
            Op op;
            if (axis == 1) op = new FlattenOp(1);
            else if (axis == 0) op = new ReshapeOp([1, -1]);
            else
            {
                long rest = 1;
                for (int i = axis; i < x.Shape.Length; i++) rest *= x.Shape[i];
                op = new ReshapeOp([-1, rest]);
            }
            Emit(_b.Add(op, NodeName(), x));
        }

        private void Reshape()
        {
            var target = Const(1, "shape"); // opset ≥ 5 (the importer reads 7–21): the shape is an input
            var shape = target.AsInts();
            if (Int("allowzero", 0) != 0 && shape.Contains(0)) throw new UnsupportedVariant("allowzero with a zero in the shape");
            if (IsConst(0))
            {
                var c = Const(0, "data");
                var resolved = new ReshapeOp(shape).Resolve(c.Shape);
                EmitConst(c.IsFloat ? new ConstTensor(resolved, c.Floats!) : new ConstTensor(resolved, c.Ints!, c.BatchMarks));
                return;
            }
            var x = Value(0);
            // Elements that came from the batch size stay dynamic: copy it at position 0, infer it elsewhere.
            for (int i = 0; i < shape.Length; i++)
            {
                if (!target.IsMarked(i)) continue;
                if (i == 0) shape[i] = 0;
                else if (!shape.Contains(-1)) shape[i] = -1;
            }
            Emit(_b.Add(new ReshapeOp(shape), NodeName(), x));
        }

        private void Transpose()
        {
            var x = Value(0);
            var perm = Ints("perm") ?? Enumerable.Range(0, x.Shape.Length).Reverse().Select(i => (long)i).ToArray();
            Emit(_b.Add(new TransposeOp(perm.Select(p => (int)p).ToArray()), NodeName(), x));
        }

        private void Squeeze(bool unsqueeze)
        {
            long[]? axes = _opset >= 13 ? OptionalConst(1, "axes")?.AsInts() : Ints("axes");
            if (IsConst(0))
            {
                var c = Const(0, "data");
                long[] shape;
                if (unsqueeze)
                {
                    var list = c.Shape.ToList();
                    int rank = list.Count + axes!.Length;
                    foreach (var a in axes.Select(a => Norm(a, rank)).Order()) list.Insert(a, 1);
                    shape = list.ToArray();
                }
                else
                {
                    var drop = (axes ?? Enumerable.Range(0, c.Shape.Length).Where(i => c.Shape[i] == 1).Select(i => (long)i).ToArray())
                        .Select(a => Norm(a, c.Shape.Length)).ToHashSet();
                    shape = c.Shape.Where((_, i) => !drop.Contains(i)).ToArray();
                }
                EmitConst(c.IsFloat ? new ConstTensor(shape, c.Floats!) : new ConstTensor(shape, c.Ints!, c.BatchMarks));
                return;
            }
            var x = Value(0);
            if (axes is null)
            {
                if (unsqueeze) throw new OnnxException(_file, $"node '{_label}': Unsqueeze needs axes");
                // Every size-1 axis except the batch, which is dynamic.
                axes = Enumerable.Range(1, x.Shape.Length - 1).Where(i => x.Shape[i] == 1).Select(i => (long)i).ToArray();
            }
            if (axes.Length == 0) { Emit(x); return; }
            Emit(_b.Add(new SqueezeOp(axes.Select(a => (int)a).ToArray(), unsqueeze), NodeName(), x));
        }

        private void Gemm()
        {
            if (!IsConst(1)) throw new UnsupportedVariant("Gemm with a computed B (only constant weights become Linear layers)");
            var x = Value(0);
            var bMat = Const(1, "B");
            if (bMat.Shape.Length != 2 || x.Shape.Length != 2) throw new OnnxException(_file, $"node '{_label}': Gemm needs 2-D A and B");
            float alpha = Float("alpha", 1f), beta = Float("beta", 1f);
            bool transA = Int("transA", 0) != 0, transB = Int("transB", 0) != 0;
            var name = NodeName(1);
            if (transA) x = _b.Add(new TransposeOp([1, 0]), Extra(name, "transpose"), x);
            var weight = transB ? bMat.AsFloats() : Transpose2D(bMat.AsFloats(), bMat.Shape[0], bMat.Shape[1]);
            long outF = transB ? bMat.Shape[0] : bMat.Shape[1], inF = transB ? bMat.Shape[1] : bMat.Shape[0];
            if (alpha != 1f) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
            ConstTensor? bias = null;
            if (Has(2))
            {
                var c = Const(2, "C");
                var cf = c.AsFloats();
                float[] bv;
                if (c.Count == 1) bv = Enumerable.Repeat(cf[0] * beta, (int)outF).ToArray();
                else if (c.Count == outF && (c.Shape.Length == 1 || c.Shape[0] == 1)) bv = cf.Select(v => v * beta).ToArray();
                else throw new UnsupportedVariant($"Gemm bias of shape [{string.Join(",", c.Shape)}] (only per-output biases)");
                bias = new ConstTensor([outF], bv);
            }
            _state[name + ".weight"] = new ConstTensor([outF, inF], weight);
            if (bias is not null) _state[name + ".bias"] = bias;
            Emit(_b.Add(new LinearOp((int)inF, (int)outF, bias is not null), name, x));
        }

        private static float[] Transpose2D(float[] m, long rows, long cols)
        {
            var t = new float[m.Length];
            for (long r = 0; r < rows; r++)
                for (long c = 0; c < cols; c++)
                    t[c * rows + r] = m[r * cols + c];
            return t;
        }

        private void MatMul()
        {
            if (IsConst(1) && !IsConst(0) && Const(1, "B") is { Shape.Length: 2 } w)
            {
                var name = NodeName(1);
                _state[name + ".weight"] = new ConstTensor([w.Shape[1], w.Shape[0]], Transpose2D(w.AsFloats(), w.Shape[0], w.Shape[1]));
                Emit(_b.Add(new LinearOp((int)w.Shape[0], (int)w.Shape[1], false), name, Value(0)));
                return;
            }
            var a = Value(0);
            var b = Value(1);
            Emit(_b.Add(new MatMulOp(), NodeName(), a, b));
        }

        private void Pad()
        {
            var x = Value(0);
            int rank = x.Shape.Length;
            long[] pads;
            string mode = Str("mode") ?? "constant";
            double value;
            if (_opset < 11)
            {
                pads = Ints("pads") ?? throw new OnnxException(_file, $"node '{_label}': pads missing");
                value = Float("value", 0f);
            }
            else
            {
                pads = Const(1, "pads").AsInts();
                value = OptionalConst(2, "constant_value") is { } cv ? cv[0] : 0;
                if (_opset >= 18 && Has(3))
                {
                    var axes = Const(3, "axes").AsInts().Select(a => Norm(a, rank)).ToArray();
                    var full = new long[2 * rank];
                    for (int k = 0; k < axes.Length; k++)
                    {
                        full[axes[k]] = pads[k];
                        full[axes[k] + rank] = pads[k + axes.Length];
                    }
                    pads = full;
                }
            }
            if (pads.Length != 2 * rank) throw new OnnxException(_file, $"node '{_label}': {pads.Length} pads for a rank-{rank} input");
            for (int d = 0; d < rank - 2; d++)
                if (pads[d] != 0 || pads[d + rank] != 0) throw new UnsupportedVariant($"padding of dimension {d}; only the last two are supported");
            if (mode is not ("constant" or "reflect" or "edge")) throw new UnsupportedVariant($"pad mode '{mode}'");
            var op = new PadOp((int)pads[rank - 2], (int)pads[rank - 1], (int)pads[2 * rank - 2], (int)pads[2 * rank - 1], value, mode);
            Emit(_b.Add(op, NodeName(), x));
        }

        private void Dropout()
        {
            RequireUnusedOutputs(1);
            double ratio = _opset < 12 ? Float("ratio", 0.5f) : OptionalConst(1, "ratio") is { } r ? r[0] : 0.5;
            if (IsConst(0)) { Alias(); return; }
            Emit(_b.Add(new DropoutOp(ratio), NodeName(), Value(0)));
        }

        private void Constant()
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
            else { shape = Const(0, "data").Shape; batched = false; }
            int rank = shape.Length;
            int start = Norm(Int("start", 0), rank), end = Attr("end") is { } e ? Norm(e.I, rank) : rank;
            start = Math.Clamp(start, 0, rank);
            end = Math.Clamp(end, start, rank);
            var values = shape[start..end];
            var marks = Enumerable.Range(start, end - start).Select(i => batched && i == 0).ToArray();
            EmitConst(new ConstTensor([values.Length], values, marks));
        }

        private void Gather()
        {
            var indices = Const(1, "indices");
            int axisAttr = (int)Int("axis", 0);
            if (IsConst(0))
            {
                var data = Const(0, "data");
                if (data.Shape.Length != 1) throw new UnsupportedVariant("folding a Gather of a constant of rank other than 1");
                var idx = indices.AsInts().Select(i => i < 0 ? i + data.Count : i).ToArray();
                if (idx.Any(i => i < 0 || i >= data.Count)) throw new OnnxException(_file, $"node '{_label}': gather index out of range");
                EmitConst(data.IsFloat
                    ? new ConstTensor(indices.Shape, idx.Select(i => data.Floats![i]).ToArray())
                    : new ConstTensor(indices.Shape, idx.Select(i => data.Ints![i]).ToArray(), idx.Select(data.IsMarked).ToArray()));
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

        private void Reduce(PoolKind kind)
        {
            var x = Value(0);
            // ReduceMean/ReduceMax take axes as an input from opset 18 on.
            long[]? axes = _opset >= 18 ? OptionalConst(1, "axes")?.AsInts() : Ints("axes");
            if (_opset >= 18 && axes is { Length: 0 }) axes = null;
            if (axes is null && _opset >= 18 && Int("noop_with_empty_axes", 0) != 0) { Emit(x); return; }
            axes ??= Enumerable.Range(0, x.Shape.Length).Select(i => (long)i).ToArray();
            bool keep = Int("keepdims", 1) != 0;
            if (!keep && axes.Select(a => Norm(a, x.Shape.Length)).Contains(0))
                throw new UnsupportedVariant("reducing away the batch axis");
            Emit(_b.Add(new ReduceOp(kind, axes.Select(a => (int)a).ToArray(), keep), NodeName(), x));
        }

        private void Unary(UnaryKind kind)
        {
            if (IsConst(0))
            {
                var c = Const(0, "input");
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
                EmitConst(new ConstTensor(c.Shape, c.AsFloats().Select(v => (float)f(v)).ToArray()));
                return;
            }
            Emit(_b.Add(new UnaryOp(kind), NodeName(), Value(0)));
        }

        private void Extremum(bool max)
        {
            var xs = Enumerable.Range(0, Inputs).Where(Has).ToArray();
            if (xs.Length == 1) { Alias(); return; }
            Emit(_b.Add(new ExtremumOp(max), NodeName(), xs.Select(Value).ToArray()));
        }

        private void Cast()
        {
            int to = (int)Int("to", 1);
            if (IsConst(0))
            {
                var c = Const(0, "input");
                EmitConst(OnnxTensors.IsFloating(to) ? new ConstTensor(c.Shape, c.AsFloats()) : new ConstTensor(c.Shape, c.AsInts(), c.BatchMarks));
                return;
            }
            if (!OnnxTensors.IsFloating(to)) throw new UnsupportedVariant($"Cast of a computed tensor to {OnnxTensors.TypeName(to)}");
            Alias();
        }
    }
}
