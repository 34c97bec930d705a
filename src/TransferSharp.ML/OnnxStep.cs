using Microsoft.ML;
using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.ML;

/// <summary>A TransferSharp graph as an ML.NET step: preprocessing (<see cref="ImageColumns"/>), then the graph
/// exported to ONNX and run by ML.NET's ONNX transformer, whose saved model holds the ONNX bytes — so
/// <c>mlContext.Model.Save</c> writes everything a fresh process needs to predict identically.</summary>
internal sealed class OnnxStep
{
    private readonly byte[] _onnx;
    private readonly Dictionary<string, int[]> _inputShape;

    /// <summary>Exports <paramref name="module"/>; <paramref name="probabilities"/> ends a classifier in a softmax.</summary>
    public OnnxStep(GraphModule module, Preprocessing preprocessing, bool probabilities)
    {
        Preprocessing = preprocessing;
        _onnx = OnnxExporter.ExportToBytes(module, new OnnxExportOptions { InputName = ImageColumns.Pixels, Probabilities = probabilities, Preprocessing = preprocessing });
        var graph = module.Graph;
        FeaturesOutput = graph.FeatureNode is not null ? OnnxExporter.FeaturesOutputName : graph.ClassifierNode is not null ? "logits" : "output";
        MainOutput = graph.ClassifierNode is not null ? "logits" : "output";
        FeatureCount = graph.NumFeatures;
        // The pixels column is a vector of unknown length to ML.NET (a registered mapping cannot declare one per
        // model); ML.NET then needs exactly one free dimension to infer, so the channels are left free.
        _inputShape = new Dictionary<string, int[]> { [ImageColumns.Pixels] = [1, -1, preprocessing.CropSize, preprocessing.CropSize] };
    }

    public Preprocessing Preprocessing { get; }

    /// <summary>The ONNX output holding the pooled features.</summary>
    public string FeaturesOutput { get; }

    /// <summary>The ONNX output holding the class scores (or the features, for a headless graph).</summary>
    public string MainOutput { get; }

    public int FeatureCount { get; }

    /// <summary>Image column → preprocessing → ONNX output <paramref name="onnxOutput"/> copied to <paramref name="outputColumn"/>,
    /// the temporary columns dropped.</summary>
    public IEstimator<ITransformer> Steps(TransformsCatalog transforms, string inputColumn, Microsoft.ML.Data.DataViewType inputType, string onnxOutput, string outputColumn)
    {
        IEstimator<ITransformer> chain = ImageColumns.Preprocess(transforms, inputColumn, inputType, Preprocessing)
            .Append(transforms.ApplyOnnxModel([onnxOutput], [ImageColumns.Pixels], new MemoryStream(_onnx, writable: false), _inputShape, gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100));
        if (onnxOutput != outputColumn) chain = chain.Append(transforms.CopyColumns(outputColumn, onnxOutput));
        var temporary = ImageColumns.Temporary.Where(c => c != ImageColumns.ByteCount || inputType is not Microsoft.ML.Data.TextDataViewType).ToList();
        if (onnxOutput != outputColumn) temporary.Add(onnxOutput);
        return chain.Append(transforms.DropColumns([.. temporary]));
    }
}
