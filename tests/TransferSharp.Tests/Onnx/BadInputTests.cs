using Google.Protobuf;
using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using Xunit;
using static TransferSharp.Tests.Onnx.OnnxGraphs;
using P = global::Onnx;

namespace TransferSharp.Tests.Onnx;

/// <summary>Corrupt, truncated, malformed and hostile ONNX files: a typed exception naming the file and
/// the problem, never a crash or a giant allocation.</summary>
[Trait("Category", "Onnx")]
public sealed class BadInputTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private static OnnxGraphs SmallConv(int opset = 13)
    {
        var g = new OnnxGraphs(opset, [1, 3, 8, 8]);
        g.Op("Relu", [g.Op("Conv", ["x", g.Weight("w", 4, 3, 3, 3)], "c")], "y");
        return g;
    }

    private T ImportFails<T>(string path) where T : OnnxException
    {
        var e = Assert.Throws<T>(() => OnnxImporter.Import(path));
        Assert.Equal(Path.GetFullPath(path), e.FilePath);
        Assert.Contains(Path.GetFileName(path), e.Message);
        return e;
    }

    [Fact]
    public void Truncated_protobuf()
    {
        var bytes = SmallConv().Model("y").ToByteArray();
        var path = Path.Combine(_dir, "truncated.onnx");
        File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
        var e = ImportFails<OnnxException>(path);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Corrupt_bytes_and_empty_file()
    {
        var path = Path.Combine(_dir, "corrupt.onnx");
        var noise = new byte[4096];
        new Random(3).NextBytes(noise);
        File.WriteAllBytes(path, noise);
        ImportFails<OnnxException>(path);
        var empty = Path.Combine(_dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        Assert.Contains("no graph", ImportFails<OnnxException>(empty).Message);
        Assert.Throws<FileNotFoundException>(() => OnnxImporter.Import(Path.Combine(_dir, "absent.onnx")));
    }

    [Fact]
    public void Metadata_that_does_not_parse_names_the_file()
    {
        var g = new OnnxGraphs(13, [1, 3, 8, 8]);
        g.Op("Relu", ["x"], "y");
        var model = g.Model("y");
        model.MetadataProps.Add(new global::Onnx.StringStringEntryProto { Key = OnnxExporter.PreprocessingKey, Value = "{\"cropSize\": \"\u0007" });
        model.MetadataProps.Add(new global::Onnx.StringStringEntryProto { Key = OnnxExporter.LabelsKey, Value = "[1, 2" });
        var path = Path.Combine(_dir, "bad-metadata.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(model));
        var imported = OnnxImporter.Import(path);
        var e = Assert.Throws<OnnxException>(() => imported.Preprocessing);
        Assert.Contains(path, e.Message);
        Assert.Contains(OnnxExporter.PreprocessingKey, e.Message);
        Assert.Contains(path, Assert.Throws<OnnxException>(() => imported.Labels).Message);
    }

    [Fact]
    public void Graph_with_a_cycle()
    {
        var g = new OnnxGraphs(13, [1, 3, 8, 8]);
        g.Op("Add", ["x", "b"], "a");
        g.Op("Relu", ["a"], "b");
        var e = ImportFails<OnnxException>(g.Save(_dir, "cycle.onnx", "b"));
        Assert.Contains("cycle", e.Message);
    }

    [Fact]
    public void Node_reading_a_missing_tensor()
    {
        var g = new OnnxGraphs(13, [1, 3, 8, 8]);
        g.Op("Add", ["x", "nowhere"], "y");
        var e = ImportFails<OnnxException>(g.Save(_dir, "missing.onnx", "y"));
        Assert.Contains("'nowhere'", e.Message);
    }

    [Fact]
    public void Absurd_initializer_shape_is_refused_without_allocating()
    {
        var g = new OnnxGraphs(13, [1, 3, 8, 8]);
        var huge = new P.TensorProto { Name = "w", DataType = 1, RawData = ByteString.CopyFrom(new byte[16]) };
        huge.Dims.AddRange([1L << 20, 1L << 20]); // 2^40 elements
        g.AddInitializer(huge);
        g.Op("Add", ["x", "w"], "y");
        var path = g.Save(_dir, "huge.onnx", "y");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = ImportFails<OnnxException>(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("initializer 'w'", e.Message);
        Assert.True(allocated < 64L << 20, $"{allocated} bytes allocated while refusing a 2^40-element tensor");

        // Declared data that does not match the shape is refused too.
        var g2 = new OnnxGraphs(13, [1, 3, 8, 8]);
        var lying = new P.TensorProto { Name = "w", DataType = 1, RawData = ByteString.CopyFrom(new byte[12]) };
        lying.Dims.AddRange([1, 3, 1, 1, 2]);
        g2.AddInitializer(lying);
        g2.Op("Add", ["x", "w"], "y");
        Assert.Contains("needs 24", ImportFails<OnnxException>(g2.Save(_dir, "lying.onnx", "y")).Message);
    }

    private static P.TensorProto External(string name, long[] dims, string location, long offset = 0)
    {
        var t = new P.TensorProto { Name = name, DataType = 1, DataLocation = P.TensorProto.Types.DataLocation.External };
        t.Dims.AddRange(dims);
        t.ExternalData.Add(new P.StringStringEntryProto { Key = "location", Value = location });
        t.ExternalData.Add(new P.StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        t.ExternalData.Add(new P.StringStringEntryProto { Key = "length", Value = (dims.Aggregate(1L, (a, b) => a * b) * 4).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return t;
    }

    [Fact]
    public void External_data_beside_the_model_loads_and_outside_is_refused()
    {
        // The weights of a small conv, moved into a file beside the model (with an offset).
        var inline = SmallConv();
        var w = inline.Graph.Initializer.Single();
        var data = w.FloatData.SelectMany(BitConverter.GetBytes).ToArray();
        var modelDir = Path.Combine(_dir, "model");
        Directory.CreateDirectory(Path.Combine(modelDir, "weights"));
        File.WriteAllBytes(Path.Combine(modelDir, "weights", "conv.bin"), [.. new byte[8], .. data]);
        File.WriteAllBytes(Path.Combine(_dir, "secret.bin"), data);

        var external = SmallConv();
        external.Graph.Initializer.Clear();
        external.Graph.Initializer.Add(External("w", [4, 3, 3, 3], "weights/conv.bin", offset: 8));
        var good = external.Save(modelDir, "external.onnx", "y");
        var inlinePath = inline.Save(modelDir, "inline.onnx", "y");
        using (var a = OnnxImporter.Import(good).CreateModule())
        using (var b = OnnxImporter.Import(inlinePath).CreateModule())
        using (var x = TorchSharp.torch.rand(1, 3, 8, 8))
        using (var ya = a.forward(x))
        using (var yb = b.forward(x))
            Assert.True(ya.equal(yb).all().item<bool>());
        // ONNX Runtime reads the same external layout.
        using (var engine = new OnnxRuntimeEngine(good)) Assert.Equal("x", engine.InputName);

        foreach (var (file, location) in new[] { ("escape.onnx", "../secret.bin"), ("absolute.onnx", Path.Combine(_dir, "secret.bin")) })
        {
            var hostile = SmallConv();
            hostile.Graph.Initializer.Clear();
            hostile.Graph.Initializer.Add(External("w", [4, 3, 3, 3], location));
            var e = ImportFails<OnnxException>(hostile.Save(modelDir, file, "y"));
            Assert.Contains("model's folder", e.Message);
        }

        var shortFile = SmallConv();
        shortFile.Graph.Initializer.Clear();
        shortFile.Graph.Initializer.Add(External("w", [4, 3, 3, 3], "weights/conv.bin", offset: 64));
        Assert.Contains("bytes", ImportFails<OnnxException>(shortFile.Save(modelDir, "short.onnx", "y")).Message);
    }

    [Fact]
    public void Unsupported_operators_are_listed_before_any_weight_is_read()
    {
        var g = new OnnxGraphs(13, [1, 3, 8, 8]);
        // A 2^40-element initializer would fail the size check: the operator report must come first.
        var huge = new P.TensorProto { Name = "big", DataType = 1, RawData = ByteString.CopyFrom(new byte[4]) };
        huge.Dims.AddRange([1L << 20, 1L << 20]);
        g.AddInitializer(huge);
        var a = g.Op("GridSample", ["x"], "up");
        var b = g.Op("LpNormalization", [a], "norm");
        g.Op("Add", [b, "big"], "y");
        var e = ImportFails<OnnxUnsupportedException>(g.Save(_dir, "unsupported.onnx", "y"));
        Assert.Equal(2, e.Nodes.Count);
        Assert.Equal(("GridSample", "up_node", 13), (e.Nodes[0].OpType, e.Nodes[0].NodeName, e.Nodes[0].Opset));
        Assert.Equal(("LpNormalization", "norm_node", 13), (e.Nodes[1].OpType, e.Nodes[1].NodeName, e.Nodes[1].Opset));
        Assert.Contains("GridSample (opset 13) at node 'up_node'", e.Message);
    }

    [Fact]
    public void Opset_outside_the_supported_range()
    {
        var e = ImportFails<OnnxException>(SmallConv(opset: 6).Save(_dir, "old.onnx", "y"));
        Assert.Contains("opset 6", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    public void Inputs_of_rank_outside_2_to_5_name_the_file_and_the_input(int rank)
    {
        var g = new OnnxGraphs(13, Enumerable.Repeat(2L, rank).ToArray());
        g.Op("Relu", ["x"], "y");
        var e = ImportFails<OnnxException>(g.Save(_dir, "rank.onnx", "y"));
        Assert.Contains($"input 'x' has rank {rank}", e.Message);
    }

    [Fact]
    public void Integer_inputs_and_dynamic_feature_dimensions_are_refused_by_name()
    {
        var g = new OnnxGraphs(13, [1, 6]);
        g.Graph.Input[0].Type.TensorType.ElemType = (int)P.TensorProto.Types.DataType.Int64;
        g.Op("Relu", ["x"], "y");
        // An integer [N, T] input is a text encoder's token input, read only by embedding lookups, casts and shape operators.
        Assert.Contains("(Relu) reads the integers of 'x'", ImportFails<OnnxException>(g.Save(_dir, "ints.onnx", "y")).Message);
        var image = new OnnxGraphs(13, [1, 3, 4, 4]);
        image.Graph.Input[0].Type.TensorType.ElemType = (int)P.TensorProto.Types.DataType.Int64;
        image.Op("Relu", ["x"], "y");
        Assert.Contains("input 'x' holds integers with rank 4", ImportFails<OnnxException>(image.Save(_dir, "int_image.onnx", "y")).Message);

        var d = new OnnxGraphs(13, [1, 4, 6]);
        d.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimParam = "T";
        d.Op("Relu", ["x"], "y");
        Assert.Contains("leaves dimension 2 dynamic", ImportFails<OnnxException>(d.Save(_dir, "dynamic.onnx", "y")).Message);
    }

    public static TheoryData<string> UnsupportedVariants() => new()
    {
        "resize_cubic", "resize_batch", "resize_antialias", "equal_of_values", "where_of_values", "prelu_computed_slope",
        "dropout_training_mode", "cast_to_float16", "constant_of_batch_shape", "batchnorm_training_mode",
    };

    [Theory]
    [MemberData(nameof(UnsupportedVariants))]
    public void Unsupported_variants_of_the_widened_operators_name_op_and_node(string name)
    {
        var g = new OnnxGraphs(18, [1, 3, 4, 4]);
        string op = name switch
        {
            "resize_cubic" => Build(g, "Resize", ["x", "", g.Floats("s", [4], 1, 1, 2, 2)], A("mode", "cubic")),
            "resize_batch" => Build(g, "Resize", ["x", "", g.Floats("s", [4], 2, 1, 1, 1)]),
            "resize_antialias" => Build(g, "Resize", ["x", "", g.Floats("s", [4], 1, 1, 0.5f, 0.5f)], A("mode", "linear"), A("antialias", 1L)),
            "equal_of_values" => Build(g, "Equal", ["x", "x"]),
            "where_of_values" => Build(g, "Where", [g.Ints("cond", 1), "x", "x"]),
            "prelu_computed_slope" => Build(g, "PRelu", ["x", "x"]),
            "dropout_training_mode" => Build(g, "Dropout", ["x", g.Floats("ratio", [], 0.5f), g.Ints("train", 1)]),
            "cast_to_float16" => Build(g, "Cast", ["x"], A("to", (long)P.TensorProto.Types.DataType.Float16)),
            "batchnorm_training_mode" => Build(g, "BatchNormalization", ["x", g.Weight("s", 3), g.Weight("b", 3), g.Weight("m", 3), g.Weight("v", 3)],
                A("training_mode", 1L)),
            _ => Build(g, "ConstantOfShape", [g.Op("Shape", ["x"], "shape")]),
        };
        var e = ImportFails<OnnxUnsupportedException>(g.Save(_dir, name + ".onnx", "y"));
        Assert.Equal((op, "y_node"), (e.Nodes.Single().OpType, e.Nodes.Single().NodeName));
        Assert.Contains($"{op} (opset 18) at node 'y_node'", e.Message);
    }

    [Fact]
    public void Onnx_mlp_loaded_as_a_vision_model_is_a_named_error()
    {
        // An MLP [N, 8] → [N, 4] imports as a graph, but it takes no images: VisionModel refuses it by name instead of
        // indexing an image size the input does not have.
        var g = new OnnxGraphs(13, [1, 8]);
        g.Op("Gemm", ["x", g.Weight("w", 4, 8), g.Weight("b", 4)], "y", A("transB", 1L));
        var path = g.Save(_dir, "mlp.onnx", "y");
        using (OnnxImporter.Import(path).CreateModule()) { }
        var e = Assert.Throws<InvalidFileException>(() => TransferSharp.Vision.VisionModel.Load(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.Contains("[N, 8]", e.Message);
        Assert.Contains("not an image model", e.Message);
    }

    private static string Build(OnnxGraphs g, string op, string[] inputs, params P.AttributeProto[] attributes)
    {
        g.Op(op, inputs, "y", attributes);
        return op;
    }
}
