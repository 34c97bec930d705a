using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;

namespace TransferSharp.Onnx;

/// <summary>Opens .onnx files as <see cref="VisionModel"/>s (for <c>VisionModel.Load("model.onnx")</c>
/// and every command taking <c>--model FILE</c>): imported as a trainable graph, with the preprocessing
/// and labels recorded in the file by <see cref="OnnxExporter"/> (ImageNet's defaults at the file's
/// input size otherwise).</summary>
public static class OnnxVisionModels
{
    /// <summary>The model in the file, or null when the file is not named .onnx.</summary>
    public static VisionModel? TryLoad(string path, ModelOptions? options, CancellationToken cancellation)
    {
        if (!path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return null;
        cancellation.ThrowIfCancellationRequested();
        var imported = OnnxImporter.Import(path);
        var module = imported.CreateModule();
        var preprocessing = imported.Preprocessing ?? DefaultPreprocessing(imported.Graph.InputShape[2]);
        var labels = imported.Labels;
        return new VisionModel(module, preprocessing, labels.Count == module.NumClasses ? labels : [],
            $"{Path.GetFileName(path)} (ONNX opset {imported.Opset}{(imported.Producer.Length > 0 ? ", " + imported.Producer : "")})");
    }

    /// <summary>ImageNet's mean and std with torchvision's 0.875 crop ratio at the given input size.</summary>
    internal static Vision.Preprocessing.Preprocessing DefaultPreprocessing(long size) =>
        Vision.Preprocessing.Preprocessing.ImageNet.AtCropSize((int)size);
}
