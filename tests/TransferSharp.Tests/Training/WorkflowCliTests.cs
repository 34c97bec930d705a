using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Training;

/// <summary>`transfer train | evaluate | extract | predict` on an image folder, with --json, in-process.</summary>
[Collection("Console")]
[Trait("Category", "Training")]
public sealed class WorkflowCliTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void The_demo_on_another_folder_names_its_model_after_the_folder()
    {
        var root = Path.Combine(_dir, "tiny-set");
        TrainingData.Folder(Path.Combine(root, "train"), 4, "bag", "coat");
        TrainingData.Folder(Path.Combine(root, "test"), 2, "bag", "coat");
        var output = Path.Combine(_dir, "demo-out");
        var (code, json, err) = CliRunner.Run("demo", "--data", root, "--model", "resnet18", "--weights", "none", "--image-size", "32",
            "--finetune-epochs", "1", "--out", output, "--json");
        Assert.True(code == 0, err);
        // The saved model is chosen on the validation split, as --mode auto chooses, and the output says which and why.
        var saved = System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("saved").GetString()!;
        Assert.Matches("^(fine-tuned|pretrained head): validation accuracy [0-9.]+ % fine-tuned, [0-9.]+ % head$", saved);
        Assert.True(File.Exists(Path.Combine(output, "tiny-set.safetensors")), string.Join(", ", Directory.GetFiles(output).Select(Path.GetFileName)));
        Assert.False(File.Exists(Path.Combine(output, "fashion.safetensors")));
    }

    [Fact]
    public void Auto_budget_and_min_images_reach_auto_and_mean_nothing_elsewhere()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "auto-data"), 4, "bag", "coat");
        var model = Path.Combine(_dir, "auto.safetensors");
        string[] common = ["train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--val-split", "0.25"];
        var record = CliRunner.RunJson([.. common, "--auto-min-images", "0", "--auto-budget", "0", "--out", model]);
        Assert.Matches("^head: fine-tuning 8 epochs of 6 images would take about .* min, over the budget of 0 min$", record.GetProperty("decision").GetString());
        Assert.True(File.Exists(model));
        foreach (var bad in new[] { new[] { "--mode", "head", "--auto-budget", "5" }, ["--mode", "finetune", "--auto-min-images", "100"], ["--auto-budget", "-1"] })
        {
            var (code, _, err) = CliRunner.Run([.. common, .. bad, "--out", Path.Combine(_dir, "refused.safetensors")]);
            Assert.Equal(2, code);
            Assert.Contains(bad[^1] == "-1" ? "--auto-budget -1" : "mean nothing with --mode", System.Text.RegularExpressions.Regex.Replace(err, @"\s+", " "));
        }
        Assert.False(File.Exists(Path.Combine(_dir, "refused.safetensors")));
    }

    [Fact]
    public void Train_evaluate_extract_and_predict_on_a_folder()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 4, "bag", "coat", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        var common = new[] { "--weights", "none", "--image-size", "32" };

        var train = CliRunner.RunJson(["train", "--model", "resnet18", .. common, "--data", data, "--mode", "finetune", "--epochs", "2", "--val-split", "0.25", "--out", model]);
        Assert.True(File.Exists(model), train.ToString());
        Assert.False(File.Exists(model + ".checkpoint"), "the checkpoint is removed when training completes");

        var confusion = Path.Combine(_dir, "confusion.png");
        var eval = CliRunner.RunJson("evaluate", "--model", model, "--data", data, "--confusion-png", confusion);
        var accuracy = eval.GetProperty("accuracy").GetDouble();
        Assert.InRange(accuracy, 0, 1);
        Assert.True(new FileInfo(confusion).Length > 1000);

        foreach (var ext in new[] { ".npy", ".csv", ".parquet" })
        {
            var features = Path.Combine(_dir, "features" + ext);
            CliRunner.RunJson(["extract", "--model", "resnet18", .. common, "--data", data, "--out", features]);
            Assert.True(new FileInfo(features).Length > 0, ext);
        }

        var image = Directory.GetFiles(Path.Combine(data, "sandal"))[0];
        var predicted = CliRunner.RunJson("predict", "--model", model, image);
        Assert.Contains(predicted.GetProperty("predictions")[0].GetProperty("top")[0].GetProperty("label").GetString(), new[] { "bag", "coat", "sandal" });
    }

    /// <summary>Issue 11's promise: an EfficientNet fine-tunes from random weights (stochastic depth and the SE blocks in
    /// training mode) and the model it writes predicts.</summary>
    [Fact]
    public void Efficientnet_b0_fine_tunes_from_random_weights()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 3, "bag", "sandal");
        var model = Path.Combine(_dir, "effnet.safetensors");
        var train = CliRunner.RunJson("train", "--model", "efficientnet_b0", "--weights", "none", "--image-size", "32", "--data", data,
            "--mode", "finetune", "--epochs", "1", "--out", model);
        Assert.True(File.Exists(model), train.ToString());
        var image = Directory.GetFiles(Path.Combine(data, "bag"))[0];
        var predicted = CliRunner.RunJson("predict", "--model", model, image);
        Assert.Contains(predicted.GetProperty("predictions")[0].GetProperty("top")[0].GetProperty("label").GetString(), new[] { "bag", "sandal" });
    }

    [Fact]
    public void Asking_for_cuda_without_it_says_what_to_reference()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "coat");
        var (code, _, err) = CliRunner.Run("train", "--model", "resnet18", "--weights", "none", "--data", data, "--out", Path.Combine(_dir, "x.safetensors"), "--device", "cuda");
        Assert.NotEqual(0, code);
        Assert.Contains("CUDA build of TorchSharp", System.Text.RegularExpressions.Regex.Replace(err, @"\s+", " "));
    }
}
