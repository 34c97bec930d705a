using Microsoft.ML;
using TransferSharp.Vision;

namespace TransferSharp.ML;

/// <summary>TransferSharp's ML.NET components, in the places ML.NET users look for them.</summary>
public static class TransferSharpCatalog
{
    /// <summary>
    /// Image featurizer: <paramref name="inputColumnName"/> (image file paths, encoded bytes from
    /// <c>LoadRawImageBytes</c>, or ML.NET images from <c>LoadImages</c>) → <paramref name="outputColumnName"/>, the pooled features of
    /// <paramref name="model"/> (a zoo name such as "resnet18_cntk" or "resnet50", an .onnx file, or a trained
    /// TransferSharp .safetensors model; <paramref name="weights"/> as for <see cref="VisionModel.Load"/>).
    /// The model is loaded (and, for zoo names, its checkpoint downloaded once) when this is called.
    /// </summary>
    public static ImageFeaturizerEstimator FeaturizeImage(this TransformsCatalog catalog, string outputColumnName, string inputColumnName,
        string model = "resnet18_cntk", string? weights = null)
    {
        Onnx.OnnxZoo.Register(); // resnet18_cntk, this package's default model
        using var loaded = VisionModel.Load(model, weights);
        return catalog.FeaturizeImage(outputColumnName, inputColumnName, loaded);
    }

    /// <summary>Image featurizer over a model already loaded (it is exported when this is called and may be
    /// disposed afterwards).</summary>
    public static ImageFeaturizerEstimator FeaturizeImage(this TransformsCatalog catalog, string outputColumnName, string inputColumnName, VisionModel model)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        return new ImageFeaturizerEstimator(catalog, outputColumnName, inputColumnName, model);
    }

    /// <summary>
    /// Image-classification trainer that fine-tunes a pretrained model with TransferSharp (a new head, then the
    /// top layer groups unfrozen) — the counterpart of ML.NET's <c>ImageClassificationTrainer</c> for any zoo
    /// model, ONNX file or trained model. Reads <see cref="FineTuneImageOptions.ImageColumnName"/> (file paths)
    /// and <see cref="FineTuneImageOptions.LabelColumnName"/> (a key column, as <c>MapValueToKey</c> makes);
    /// writes "Score" (class probabilities) and "PredictedLabel" (the label's key type).
    /// </summary>
    public static ImageClassificationFineTuner FineTuneImageClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers trainers,
        FineTuneImageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(trainers);
        Onnx.OnnxZoo.Register(); // resnet18_cntk, this package's default model
        return new ImageClassificationFineTuner(options ?? new FineTuneImageOptions());
    }

    /// <summary>Registers this assembly's pipeline components with <paramref name="ml"/>. Loading a saved model
    /// registers them by itself; call this when a host resolves components before loading.</summary>
    public static void RegisterTransferSharp(this MLContext ml) => ml.ComponentCatalog.RegisterAssembly(typeof(TransferSharpCatalog).Assembly);
}
