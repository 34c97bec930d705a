using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// A <see cref="ModelGraph"/> as JSON, so that a graph no zoo builder makes (an imported ONNX network)
/// can be stored in a model file and rebuilt from it. Ops are written as their record arguments with an
/// <c>"op"</c> discriminator (the op's type name); only the op types of this library can be read back, so a
/// hostile file can name no other type. Reading validates the graph like any other (names, inputs, order,
/// shapes).
/// </summary>
public static class GraphJson
{
    private sealed record GraphDocument(string Name, long[] InputShape, IReadOnlyList<Node> Nodes, string Output, string? FeatureNode,
        string? ClassifierNode, IReadOnlyList<LayerGroup> Groups, IReadOnlyList<string>? AuxOutputs, IReadOnlyList<string>? RegistrationOrder,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ElementType? InputType = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<GraphInput>? ExtraInputs = null);

    private static readonly Type[] OpTypes = typeof(Op).Assembly.GetTypes()
        .Where(t => t.IsSubclassOf(typeof(Op)) && !t.IsAbstract && t.IsPublic)
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .ToArray();

    /// <summary>The options used for graphs (also as a converter inside other documents).</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { Configure } },
    };

    /// <summary>The graph as JSON.</summary>
    public static string Serialize(ModelGraph graph) => JsonSerializer.Serialize(ToDocument(graph), Options);

    /// <summary>Reads a graph written by <see cref="Serialize"/>; malformed JSON, an unknown op or an invalid
    /// graph is a <see cref="GraphException"/>.</summary>
    public static ModelGraph Deserialize(string json)
    {
        GraphDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<GraphDocument>(json, Options);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new GraphException($"not a valid graph description: {e.Message}");
        }
        try
        {
            return FromDocument(doc ?? throw new GraphException("not a valid graph description: null"));
        }
        catch (Exception e) when (e is not GraphException and not OutOfMemoryException)
        {
            // Shape inference on hostile values (negative sizes, overflow, null entries) ends here.
            throw new GraphException($"not a valid graph description: {e.Message}");
        }
    }

    /// <summary>
    /// The parameter and buffer elements the graph's layers will allocate, summed from the ops' declared
    /// <see cref="Op.ParameterShapes"/> before any allocation: a file describing a graph far larger than the weights it
    /// holds is refused by the caller instead of allocating it.
    /// </summary>
    public static long ParameterElements(ModelGraph graph)
    {
        long total = 0;
        try
        {
            foreach (var node in graph.Nodes)
            {
                foreach (var p in node.Op.ParameterShapes)
                {
                    long n = 1;
                    foreach (var d in p.Shape) n = checked(n * Math.Max(d, 0));
                    total = checked(total + n);
                }
            }
        }
        catch (Exception e) when (e is OverflowException or DivideByZeroException)
        {
            // A size past long, or a group count of zero, is no graph a file can hold: refuse it as too large.
            return long.MaxValue;
        }
        return total;
    }

    private static GraphDocument ToDocument(ModelGraph g) =>
        new(g.Name, g.InputShape, g.Nodes, g.Output, g.FeatureNode, g.ClassifierNode, g.Groups, g.AuxOutputs, g.RegistrationOrder,
            // Written only for graphs that have them, so vision graphs keep the documents they had.
            g.InputType == ElementType.Float32 ? null : g.InputType, g.ExtraInputs.Count == 0 ? null : g.ExtraInputs);

    private static ModelGraph FromDocument(GraphDocument d)
    {
        if (d.Name is null || d.InputShape is null || d.Nodes is null || d.Output is null || d.Groups is null)
            throw new GraphException("not a valid graph description: name, inputShape, nodes, output and groups are required");
        if (d.InputShape.Length is < 2 or > 5 || d.InputShape.Any(x => x <= 0 || x > 1 << 16))
            throw new GraphException($"not a valid graph description: input shape [{string.Join(",", d.InputShape)}] is not a plausible input of rank 2 to 5 ([N, F] … [N, C, D, H, W])");
        if (d.Nodes.Any(n => n is null || n.Op is null || n.Inputs is null || n.Name is null))
            throw new GraphException("not a valid graph description: a node lacks its name, op or inputs");
        if (d.ExtraInputs is { } extras && extras.Any(i => i is null || i.Name is null || i.Shape is null || i.Shape.Length is < 1 or > 5 || i.Shape.Any(x => x <= 0 || x > 1 << 16)))
            throw new GraphException("not a valid graph description: an extra input lacks its name or has an implausible shape");
        var graph = new ModelGraph(d.Name, d.InputShape, d.Nodes, d.Output, d.FeatureNode, d.ClassifierNode, d.Groups, d.AuxOutputs,
            d.InputType ?? ElementType.Float32, d.ExtraInputs)
        {
            RegistrationOrder = d.RegistrationOrder,
        };
        foreach (var (node, shape) in graph.Shapes)
        {
            if (shape.Any(x => x <= 0))
                throw new GraphException($"not a valid graph description: node '{node}' would output shape [{string.Join(",", shape)}]");
        }
        return graph;
    }

    /// <summary>Ops are polymorphic with a closed list of types; records keep only their constructor
    /// arguments (computed properties such as <see cref="Op.Kind"/> are not data).</summary>
    private static void Configure(JsonTypeInfo info)
    {
        if (info.Type == typeof(Op))
        {
            info.PolymorphismOptions = new JsonPolymorphismOptions
            {
                TypeDiscriminatorPropertyName = "op",
                UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization,
            };
            foreach (var t in OpTypes) info.PolymorphismOptions.DerivedTypes.Add(new JsonDerivedType(t, t.Name));
            return;
        }
        if (info.Kind != JsonTypeInfoKind.Object || info.Type.Namespace != typeof(Op).Namespace) return;
        var ctor = info.Type.GetConstructors(BindingFlags.Public | BindingFlags.Instance).OrderByDescending(c => c.GetParameters().Length).FirstOrDefault();
        var parameters = new HashSet<string>((ctor?.GetParameters() ?? []).Select(p => p.Name!), StringComparer.OrdinalIgnoreCase);
        for (int i = info.Properties.Count - 1; i >= 0; i--)
        {
            var p = info.Properties[i];
            var member = p.AttributeProvider as MemberInfo;
            if (member is null || !parameters.Contains(member.Name)) info.Properties.RemoveAt(i);
        }
    }

    /// <summary>Writes and reads a <see cref="ModelGraph"/> property of another JSON document as a nested object.</summary>
    public sealed class Converter : JsonConverter<ModelGraph>
    {
        /// <inheritdoc />
        public override ModelGraph Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            try
            {
                return Deserialize(doc.RootElement.GetRawText());
            }
            catch (GraphException e)
            {
                throw new JsonException(e.Message, e);
            }
        }

        /// <inheritdoc />
        public override void Write(Utf8JsonWriter writer, ModelGraph value, JsonSerializerOptions options) =>
            writer.WriteRawValue(Serialize(value), skipInputValidation: true);
    }
}
