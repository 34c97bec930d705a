// Transfer to a folder of images (one sub-folder per class): features of a pretrained body, a new head
// trained on them, the test accuracy, and the model saved as one file.
using System.Globalization;
using TransferSharp.Data;
using TransferSharp.Training;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: TransferFolder TRAIN_DIR OUT_MODEL [TEST_DIR] [--model resnet18_cntk] [--epochs 20]");
    return 2;
}
TransferSharp.Onnx.OnnxZoo.Register(); // resnet18_cntk, the offline default (package TransferSharp.Models.Cntk)
string Option(string name, string fallback) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
var train = ImageDataset.FromFolder(args[0]);
using var trained = Transfer.From(Option("--model", "resnet18_cntk"))
    .Train(train)
    .Head(epochs: int.Parse(Option("--epochs", "20"), CultureInfo.InvariantCulture))
    .Run();
trained.Save(args[1]);
Console.WriteLine($"trained on {train.Count} images of {train.ClassNames.Count} classes, saved {args[1]}");
if (args.Length > 2 && !args[2].StartsWith("--", StringComparison.Ordinal))
{
    var report = trained.Evaluate(ImageDataset.FromFolder(args[2]));
    Console.WriteLine($"test accuracy {report.Accuracy.ToString("P1", CultureInfo.InvariantCulture)}, macro F1 {report.MacroF1:F3}");
}
return 0;
