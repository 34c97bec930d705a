using Microsoft.ML;
using Microsoft.ML.Data;
using TransferSharp.Vision;

namespace TransferSharp.ML;

/// <summary>
/// Turns an image column (file paths, encoded bytes from <c>LoadRawImageBytes</c>, or ML.NET images from
/// <c>LoadImages</c>) into a <c>float</c> vector of
/// the model's pooled features: the preprocessing bound to the model's weights, then the model's body. Any model
/// <see cref="VisionModel.Load"/> opens works: a zoo name (with its weights), an ONNX file, a trained TransferSharp
/// model. Create it with <see cref="TransferSharpCatalog.FeaturizeImage(TransformsCatalog, string, string, string, string?)"/>.
/// Fitting learns nothing; the fitted transformer is an ordinary chain of ML.NET steps that saves with
/// <c>mlContext.Model.Save</c> and loads in any process that can load this assembly. Dispose it when done: it deletes
/// the ONNX file its ONNX Runtime step reads from the temp folder.
/// </summary>
public sealed class ImageFeaturizerEstimator : IEstimator<ITransformer>
{
    private readonly TransformsCatalog _transforms;
    private readonly OnnxStep _step;

    internal ImageFeaturizerEstimator(TransformsCatalog transforms, string outputColumnName, string inputColumnName, VisionModel model)
    {
        _transforms = transforms;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        ModelDescription = model.Description;
        _step = new OnnxStep(model.Module, model.Preprocessing, probabilities: false);
    }

    /// <summary>The features column written.</summary>
    public string OutputColumnName { get; }

    /// <summary>The image column read.</summary>
    public string InputColumnName { get; }

    /// <summary>The model, for people ("resnet18_cntk with cntk_in1k").</summary>
    public string ModelDescription { get; }

    /// <summary>Length of the feature vector.</summary>
    public int FeatureCount => _step.FeatureCount;

    /// <inheritdoc />
    public ITransformer Fit(IDataView input)
    {
        if (input.Schema.GetColumnOrNull(InputColumnName) is null)
            throw new ArgumentException($"the input has no column '{InputColumnName}' (columns: {string.Join(", ", input.Schema.Select(c => c.Name))})");
        return _step.Fit(_transforms, input, InputColumnName, _step.FeaturesOutput, OutputColumnName);
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        _step.OutputSchema(_transforms, inputSchema, InputColumnName, OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, FeatureCount));
}
