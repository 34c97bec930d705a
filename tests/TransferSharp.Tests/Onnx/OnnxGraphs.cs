using Google.Protobuf;
using TransferSharp.Tests.Support;
using P = global::Onnx;

namespace TransferSharp.Tests.Onnx;

/// <summary>Builds small ONNX models in code (no binary test data): nodes, random initializers, one
/// image input with a symbolic batch, one output.</summary>
internal sealed class OnnxGraphs
{
    private readonly P.GraphProto _g = new() { Name = "test" };
    private readonly int _opset;
    private ulong _stream = 1;

    public OnnxGraphs(int opset, long[] inputShape, string input = "x")
    {
        _opset = opset;
        _g.Input.Add(ValueInfo(input, inputShape, symbolicBatch: true));
    }

    public static P.ValueInfoProto ValueInfo(string name, long[]? shape, bool symbolicBatch = false)
    {
        var t = new P.TypeProto.Types.Tensor { ElemType = 1 };
        if (shape is not null)
        {
            t.Shape = new P.TensorShapeProto();
            for (int i = 0; i < shape.Length; i++)
                t.Shape.Dim.Add(i == 0 && symbolicBatch ? new P.TensorShapeProto.Types.Dimension { DimParam = "N" } : new P.TensorShapeProto.Types.Dimension { DimValue = shape[i] });
        }
        return new P.ValueInfoProto { Name = name, Type = new P.TypeProto { TensorType = t } };
    }

    public P.NodeProto Node(string op, string[] inputs, string[] outputs, params P.AttributeProto[] attrs)
    {
        var n = new P.NodeProto { OpType = op, Name = outputs[0] + "_node" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attrs);
        _g.Node.Add(n);
        return n;
    }

    public string Op(string op, string[] inputs, string output, params P.AttributeProto[] attrs)
    {
        Node(op, inputs, [output], attrs);
        return output;
    }

    public string Weight(string name, params long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        long fanIn = shape.Length > 1 ? n / shape[0] : 1;
        var values = ReferenceFill.Stream(_stream++, n, u => shape.Length > 1 ? u * Math.Sqrt(3.0 / fanIn) : 1 + 0.2 * u);
        var t = new P.TensorProto { Name = name, DataType = 1 };
        t.Dims.AddRange(shape);
        t.FloatData.AddRange(values);
        _g.Initializer.Add(t);
        return name;
    }

    public string Floats(string name, long[] shape, params float[] values)
    {
        var t = new P.TensorProto { Name = name, DataType = 1 };
        t.Dims.AddRange(shape);
        t.FloatData.AddRange(values);
        _g.Initializer.Add(t);
        return name;
    }

    public string Ints(string name, params long[] values)
    {
        var t = new P.TensorProto { Name = name, DataType = 7 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _g.Initializer.Add(t);
        return name;
    }

    public P.TensorProto AddInitializer(P.TensorProto t)
    {
        _g.Initializer.Add(t);
        return t;
    }

    public static P.AttributeProto A(string name, long v) => new() { Name = name, Type = P.AttributeProto.Types.AttributeType.Int, I = v };

    public static P.AttributeProto A(string name, float v) => new() { Name = name, Type = P.AttributeProto.Types.AttributeType.Float, F = v };

    public static P.AttributeProto A(string name, string v) => new() { Name = name, Type = P.AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };

    public static P.AttributeProto A(string name, params long[] v)
    {
        var a = new P.AttributeProto { Name = name, Type = P.AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    public static P.AttributeProto T(string name, P.TensorProto t) => new() { Name = name, Type = P.AttributeProto.Types.AttributeType.Tensor, T = t };

    public P.GraphProto Graph => _g;

    public P.ModelProto Model(string output)
    {
        if (_g.Output.Count == 0) _g.Output.Add(ValueInfo(output, null));
        var m = new P.ModelProto { IrVersion = 7, ProducerName = "TransferSharp.Tests", Graph = _g };
        m.OpsetImport.Add(new P.OperatorSetIdProto { Domain = "", Version = _opset });
        return m;
    }

    public string Save(string dir, string fileName, string output)
    {
        var path = Path.Combine(dir, fileName);
        File.WriteAllBytes(path, Model(output).ToByteArray());
        return path;
    }
}
