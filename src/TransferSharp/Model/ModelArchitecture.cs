using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Training;

/// <summary>
/// Enough to rebuild a trained model's graph: the zoo architecture (or, for a body no zoo builder makes — an imported
/// ONNX network — its graph), its input options, and the head. The graph is the reference model with
/// <see cref="NumClasses"/> outputs, its classifier made by <see cref="ModelGraph.WithClassifier"/>, so the reference's
/// names hold (torchvision's <c>fc</c>, <c>classifier.1</c>, …): a fine-tuned model's state dict loads into the reference
/// model built with the same class count. Stored as JSON in a model file's metadata.
/// </summary>
public sealed record ModelArchitecture
{
    /// <summary>Zoo name of the body (see <c>transfer models</c>); with <see cref="Graph"/>, a description of where
    /// that graph came from ("onnx:model.onnx").</summary>
    public string Zoo { get; init; } = "";

    /// <summary>The graph itself, for models that are not in the zoo (imported ONNX networks); null for zoo models,
    /// which are rebuilt from <see cref="Zoo"/>. A graph that does not end in its classifier is used up to its feature node.</summary>
    public ModelGraph? Graph { get; init; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Input size the graph is built for (null: the family's native size).</summary>
    public int? ImageSize { get; init; }

    /// <summary>The head.</summary>
    public HeadSpec Head { get; init; } = new();

    /// <summary>Number of classes (0: no classifier, the output is the pre-logits features).</summary>
    public int NumClasses { get; init; }

    /// <summary>Builds the graph.</summary>
    public ModelGraph BuildGraph()
    {
        ModelGraph body;
        if (Graph is null)
        {
            body = ModelZoo.Get(Zoo).Build(new ModelOptions { NumClasses = NumClasses, InChannels = InChannels, ImageSize = ImageSize });
            if (NumClasses == 0 && Head == new HeadSpec()) return body;
        }
        else
        {
            var g = SizedGraph(Graph);
            if (g.ClassifierNode is null || g.ClassifierNode != g.Output)
            {
                var featureNode = g.FeatureNode ?? throw new GraphException($"model '{Zoo}' marks no feature node, so no head can be put on it");
                g = g.CutAt(featureNode);
            }
            body = g;
        }
        return body.WithClassifier(NumClasses, Head);
    }

    /// <summary>A stored graph at the requested input: its own channels, and its own size unless <see cref="ImageSize"/>
    /// asks for another (which its ops must allow).</summary>
    private ModelGraph SizedGraph(ModelGraph g)
    {
        if (InChannels != g.InChannels)
            throw new InvalidOptionException(nameof(InChannels), $"graph '{g.Name}' takes {g.InChannels} input channels, not {InChannels}");
        if (ImageSize is not { } size || (g.InputShape[2] == size && g.InputShape[3] == size)) return g;
        return g.With(inputShape: [g.InputShape[0], g.InputShape[1], size, size]);
    }

    /// <summary>Builds the model with freshly initialised weights.</summary>
    public GraphModule Build() => new(BuildGraph());

    /// <summary>
    /// The architecture a model file of the first format (<c>model/1</c>) described, and the renaming of its tensors. That
    /// format cut every body at its feature node and put its own head there (<c>head.pool</c>, then <c>head.fc</c>, or
    /// <c>head.fc1</c> → ReLU → <c>head.fc2</c>); read now as that body stored as a graph with a head of today's names.
    /// </summary>
    internal static (ModelArchitecture Architecture, Func<string, string> Rename) FromFormat1(ModelArchitecture v1)
    {
        var source = v1.Graph ?? ModelZoo.Get(v1.Zoo).Build(new ModelOptions { NumClasses = 0, InChannels = v1.InChannels, ImageSize = v1.ImageSize });
        var cut = v1.SizedGraph(source).CutAt(source.FeatureNode
            ?? throw new GraphException($"model '{v1.Zoo}' marks no feature node"));
        // The first format kept a head dropout of 0 as "none"; a positive rate sat right before the last layer.
        var head = v1.Head with { Dropout = v1.Head.Dropout is > 0 ? v1.Head.Dropout : null };
        var arch = v1 with { Graph = cut, ImageSize = null, Head = head };
        static string Rename(string name) => name switch
        {
            _ when name.StartsWith("head.fc1.", StringComparison.Ordinal) => "fc_hidden." + name["head.fc1.".Length..],
            _ when name.StartsWith("head.fc2.", StringComparison.Ordinal) => "fc." + name["head.fc2.".Length..],
            _ when name.StartsWith("head.fc.", StringComparison.Ordinal) => "fc." + name["head.fc.".Length..],
            _ => name,
        };
        return (arch, Rename);
    }
}
