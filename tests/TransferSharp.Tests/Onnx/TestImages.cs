using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Preprocessing;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>The photos of tests/data/photos through the library's image pipeline with
/// resnet18_cntk's preprocessing (shorter side 224, center crop, RGB pixels 0–255).</summary>
internal static class TestImages
{
    public static string PhotoDir => Path.Combine(Paths.TestData, "photos");

    public static string[] PhotoNames => Directory.GetFiles(PhotoDir, "*.jpg").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray()!;

    public static string PathOf(string name) => Path.Combine(PhotoDir, name + ".jpg");

    public static Tensor Batch(IEnumerable<string> names) =>
        ImageTransforms.LoadBatch(names.Select(PathOf).ToArray(), OnnxZoo.ResNet18CntkPreprocessing);
}
