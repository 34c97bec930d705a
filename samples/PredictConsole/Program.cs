// Predict from a console app: load a model (a zoo name with its ImageNet weights, a trained .safetensors
// model, or an .onnx file), build a reusable predictor, print the top classes of each image.
using TransferSharp.Vision;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: PredictConsole MODEL IMAGE...   (MODEL: resnet50, model.safetensors, model.onnx)");
    return 2;
}
TransferSharp.Onnx.OnnxZoo.Register(); // models trained on resnet18_cntk (package TransferSharp.Models.Cntk) rebuild by name
using var model = VisionModel.Load(args[0]);
using var predictor = model.CreatePredictor();
foreach (var p in predictor.Predict(args[1..], top: 3))
    Console.WriteLine($"{p.Source}: " + string.Join(", ", p.Top.Select(c => $"{c.Label} {c.Probability:P1}")));
return 0;
