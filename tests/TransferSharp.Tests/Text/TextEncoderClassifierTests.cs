using TransferSharp.Cli.Commands.Text;
using TransferSharp.Tests.Support;
using TransferSharp.Tests.Text.Transformers;
using TransferSharp.Text.Classification;
using TransferSharp.Text.Transformers;
using TransferSharp.Training;
using TransferSharp.Weights;
using Xunit;

namespace TransferSharp.Tests.Text;

/// <summary>
/// Issue 16 item 5: <see cref="TextClassifier"/> on a pretrained transformer encoder. Head mode fits the head on the frozen
/// all-MiniLM-L6-v2's cached embeddings; fine-tuning trains a tiny BERT through the shared loop and resumes bit-exact; both
/// save to one file that reloads to identical predictions; `transfer text train --model ENCODER` trains, predicts and
/// evaluates, and refuses options that do not apply.
/// </summary>
[Collection("Console")]
public sealed class TextEncoderClassifierTests : IDisposable
{
    private static readonly string[] Cooking = ["soup", "bread", "oven", "salt", "pepper", "bake", "dinner", "kitchen", "sugar", "butter"];
    private static readonly string[] Computing = ["code", "bug", "compile", "server", "keyboard", "screen", "program", "disk", "network", "memory"];
    private static readonly string[] Filler = ["the", "a", "is", "very", "my", "and", "with", "today"];

    private readonly string _temp = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>Short texts of two topics, alternating: three topic words among filler.</summary>
    private static TextDataset Topics(int count, int seed)
    {
        var rng = new Random(seed);
        return new TextDataset(Enumerable.Range(0, count).Select(i =>
        {
            var topic = i % 2 == 0 ? Cooking : Computing;
            var words = new[] { topic[rng.Next(10)], Filler[rng.Next(8)], topic[rng.Next(10)], Filler[rng.Next(8)], topic[rng.Next(10)] };
            return new TextExample(string.Join(' ', words), i % 2 == 0 ? "cooking" : "computing");
        }).ToList());
    }

    private string TinyBert() => EncoderFolders.TinyBert(Path.Combine(_temp, "tiny"), [.. Cooking, .. Computing, .. Filler]);

    private static TextClassifierOptions TinyFineTune => TextClassifierOptions.ForEncoder() with
    {
        Epochs = 2, BatchSize = 8, LearningRate = 0.01, EncoderLearningRate = 1e-3, MaxLength = 16, WarmupEpochs = 0.5, Seed = 3,
    };

    [Fact]
    public void Head_mode_fits_the_head_on_frozen_minilm_embeddings_and_reloads_to_identical_predictions()
    {
        var train = Topics(24, seed: 1);
        var validation = Topics(10, seed: 2);
        var encoder = TextEncoder.Load(EncoderFolders.MiniLm(Path.Combine(_temp, "minilm")));
        var phases = new HashSet<string>();
        var run = new TrainRunOptions { Progress = new SyncProgress(p => phases.Add(p.Phase)) };
        using var classifier = TextClassifier.Train(encoder, train, validation, TextClassifierOptions.ForEncoder(TrainMode.Head) with { MaxLength = 32 }, run);

        Assert.Equal(TextModelKind.Encoder, classifier.Options.Model);
        Assert.Null(classifier.Vocabulary);
        Assert.Equal(32, classifier.Encoder!.Tokenizer.Settings.MaxLength);
        Assert.Equal(384, classifier.EmbeddingDimension);
        Assert.Equal(384 * 2 + 2, classifier.TrainableParameters); // the encoder stays frozen
        Assert.NotNull(classifier.HeadFit);
        Assert.Contains("encode", phases);
        Assert.Contains("fit head", phases);
        Assert.Equal(1.0, classifier.Evaluate(validation).Accuracy); // two topics MiniLM tells apart at a glance

        var path = Path.Combine(_temp, "head.safetensors");
        classifier.Save(path);
        using var loaded = TextClassifier.Load(path);
        Assert.Equal(TextPooling.Mean, loaded.Encoder!.Pooling);
        Assert.True(loaded.Encoder.Normalize);
        Assert.Equal(classifier.Labels, loaded.Labels);
        var texts = validation.Examples.Select(e => e.Text).Append("a soup with butter is my dinner today").ToList();
        Assert.Equal(classifier.Predict(texts, 2), loaded.Predict(texts, 2));
    }

    [Fact]
    public void Fine_tuning_resumed_after_an_epoch_ends_bit_identical_to_an_uninterrupted_run_and_reloads()
    {
        var train = Topics(24, seed: 3);
        var validation = Topics(8, seed: 4);
        var folder = TinyBert();
        var options = TinyFineTune;
        using var whole = TextClassifier.Train(TextEncoder.Load(folder), train, validation, options);
        Assert.True(whole.TrainableParameters > 1000, "the encoder trains too");

        var checkpoint = Path.Combine(_temp, "run.checkpoint");
        using var cts = new CancellationTokenSource();
        var first = new TrainRunOptions { Checkpoint = new CheckpointOptions { Path = checkpoint }, OnEpoch = e => { if (e.Epoch == 1) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() => TextClassifier.Train(TextEncoder.Load(folder), train, validation, options, first, cts.Token));
        Assert.True(File.Exists(checkpoint));
        var second = new TrainRunOptions { Checkpoint = new CheckpointOptions { Path = checkpoint, Resume = true } };
        using var resumed = TextClassifier.Train(TextEncoder.Load(folder), train, validation, options, second);

        Assert.Equal(whole.History.Select(h => (h.TrainLoss, h.ValidationLoss, h.LearningRate)), resumed.History.Select(h => (h.TrainLoss, h.ValidationLoss, h.LearningRate)));
        string a = Path.Combine(_temp, "whole.safetensors"), b = Path.Combine(_temp, "resumed.safetensors");
        whole.Save(a);
        resumed.Save(b);
        using (var wa = SafeTensors.Read(a))
        using (var wb = SafeTensors.Read(b))
        using (var start = SafeTensors.Read(Path.Combine(folder, "model.safetensors")))
        {
            Assert.Contains("encoder.embeddings.word_embeddings.weight", wa.Keys);
            Assert.Contains("head.weight", wa.Keys);
            Assert.Equal(wa.Keys.Order(), wb.Keys.Order());
            foreach (var key in wa.Keys) Assert.Equal(wa[key].data<float>().ToArray(), wb[key].data<float>().ToArray());
            var query = "encoder.encoder.layer.0.attention.self.query.weight";
            Assert.NotEqual(start[query["encoder.".Length..]].data<float>().ToArray(), wa[query].data<float>().ToArray());
        }

        // The linear schedule ends at 0: the last step of epoch 2 runs at 1/(steps after warm-up) of the base rate.
        Assert.True(whole.History[1].LearningRate < whole.History[0].LearningRate);
        using var loaded = TextClassifier.Load(a);
        var texts = validation.Examples.Select(e => e.Text).ToList();
        Assert.Equal(whole.Predict(texts, 2), loaded.Predict(texts, 2));
    }

    [Fact]
    public void Linear_schedule_warms_up_then_decays_to_zero_at_the_end()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.Linear, WarmupSteps: 2, TotalSteps: 10, StepsPerEpoch: 5, StepEpochs: 1, Gamma: 1, MinFactor: 0);
        Assert.Equal([0.5, 1, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0], Enumerable.Range(0, 11).Select(s => schedule.Factor(s)));
    }

    [Fact]
    public void Word_vector_options_and_head_mode_epoch_options_are_refused_by_name()
    {
        TrainCommand.Settings With(string model, Func<TrainCommand.Settings, TrainCommand.Settings> set) =>
            set(new TrainCommand.Settings { Data = "train.csv", Out = "out.safetensors", Model = model });
        string Refusal(TrainCommand.Settings s) => s.Validate() is { Successful: false } r ? r.Message! : "accepted";

        Assert.Contains("--vectors applies to the word-vector models", Refusal(With("minilm.onnx", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Vectors = "w2v.bin" })));
        Assert.Contains("--mode head", Refusal(With("minilm.onnx", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Freeze = true })));
        Assert.Contains("--mode applies to an encoder", Refusal(With("bow", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Mode = "head" })));
        Assert.Contains("--epochs applies to --mode finetune", Refusal(With("minilm.onnx", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Mode = "head", Epochs = 3 })));
        Assert.Contains("unknown --mode", Refusal(With("minilm.onnx", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Mode = "auto" })));
        Assert.Equal("accepted", Refusal(With("minilm.onnx", s => new TrainCommand.Settings { Data = s.Data, Out = s.Out, Model = s.Model, Mode = "finetune", Epochs = 2, EncoderLearningRate = 3e-5 })));
    }

    [Fact]
    public void Cli_trains_an_encoder_classifier_that_predict_and_evaluate_open()
    {
        var data = Path.Combine(_temp, "train.csv");
        File.WriteAllLines(data, ["text,label", .. Topics(24, seed: 5).Examples.Select(e => $"{e.Text},{e.Label}")]);
        var val = Path.Combine(_temp, "val.csv");
        File.WriteAllLines(val, ["text,label", .. Topics(8, seed: 6).Examples.Select(e => $"{e.Text},{e.Label}")]);
        var model = Path.Combine(_temp, "tiny.safetensors");
        var summary = CliRunner.RunJson("text", "train", "--model", TinyBert(), "--data", data, "--val", val, "--test", val, "--epochs", "1",
            "--batch-size", "8", "--max-length", "16", "--lr", "0.01", "--encoder-lr", "0.001", "--out", model);
        Assert.Equal("encoder", summary.GetProperty("kind").GetString());
        Assert.Equal("finetune", summary.GetProperty("mode").GetString());
        Assert.Equal(1, summary.GetProperty("history").GetArrayLength());
        Assert.False(File.Exists(model + ".checkpoint"), "deleted when training completes");

        var predictions = CliRunner.RunJson("text", "predict", "--model", model, "soup with bread", "a bug in my code");
        Assert.Equal(2, predictions.GetArrayLength());
        var evaluation = CliRunner.RunJson("text", "evaluate", "--model", model, "--data", val).GetProperty("evaluation");
        Assert.Equal(summary.GetProperty("test").GetProperty("accuracy").GetDouble(), evaluation.GetProperty("accuracy").GetDouble());

        // The help renders ([CLS] in a description once broke Spectre's markup).
        Assert.Equal(0, CliRunner.Run("text", "train", "--help").Code);
        var (code, _, _) = CliRunner.Run("text", "train", "--model", TinyBert(), "--data", data, "--mode", "head", "--epochs", "2", "--out", Path.Combine(_temp, "refused.safetensors"));
        Assert.NotEqual(0, code);
        Assert.False(File.Exists(Path.Combine(_temp, "refused.safetensors")));
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, after the test may have looked).</summary>
    private sealed class SyncProgress(Action<ProgressInfo> report) : IProgress<ProgressInfo>
    {
        public void Report(ProgressInfo value) => report(value);
    }
}
