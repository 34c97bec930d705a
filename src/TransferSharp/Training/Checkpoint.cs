using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>Where a training run stands after an epoch; stored as JSON in the checkpoint.</summary>
internal sealed record TrainingState
{
    public string Fingerprint { get; init; } = "";
    public int NextEpoch { get; set; }
    public int Stage { get; set; }
    public long StageSteps { get; set; }
    public int BadEpochs { get; set; }
    public int BestEpoch { get; set; }
    public double BestAccuracy { get; set; } = double.NegativeInfinity;
    public double BestLoss { get; set; } = double.PositiveInfinity;
    public bool StoppedEarly { get; set; }
    public List<EpochRecord> History { get; init; } = [];
    public double Seconds { get; set; }
}

/// <summary>
/// A training checkpoint: one safetensors file with the model's (persisted) tensors, the best epoch's
/// copy, the optimizer state, the weight average (when on), and the run state as JSON. Written atomically after every epoch, so a killed run resumes
/// from the last completed epoch exactly. Randomness needs no state here: each epoch's generator is seeded from the run's
/// seed and the epoch (<see cref="TrainLoop.DropoutGenerator"/>); the global generator state older checkpoints hold is ignored.
/// </summary>
internal static class Checkpoint
{
    public const string FormatValue = "checkpoint/1";
    private const string Model = "model/", Best = "best/", Optim = "optim/", Average = "ema/";

    public static void Save(string path, TrainingState state, IEnumerable<(string, Tensor)> model, IEnumerable<(string, Tensor)> best, Optimizer? optimizer,
        IEnumerable<(string, Tensor)>? average = null)
    {
        var tensors = new List<(string, Tensor)>();
        tensors.AddRange(model.Select(t => (Model + t.Item1, t.Item2)));
        tensors.AddRange(best.Select(t => (Best + t.Item1, t.Item2)));
        if (optimizer is not null) tensors.AddRange(optimizer.StateTensors().Select(t => (Optim + t.Name, t.Tensor)));
        if (average is not null) tensors.AddRange(average.Select(t => (Average + t.Item1, t.Item2)));
        var meta = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [ModelFile.FormatKey] = FormatValue,
            ["state"] = TrainingJson.Serialize(state),
        };
        TensorFile.Write(path, tensors, meta);
    }

    public sealed class Loaded(TrainingState state, List<(string Name, Tensor Tensor)> all) : IDisposable
    {
        public TrainingState State { get; } = state;
        public IEnumerable<(string Name, Tensor Tensor)> Part(string prefix) =>
            all.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(t => (t.Name[prefix.Length..], t.Tensor));
        public IEnumerable<(string Name, Tensor Tensor)> ModelTensors => Part(Model);
        public IEnumerable<(string Name, Tensor Tensor)> BestTensors => Part(Best);
        public IEnumerable<(string Name, Tensor Tensor)> OptimizerTensors => Part(Optim);
        public IEnumerable<(string Name, Tensor Tensor)> AverageTensors => Part(Average);
        public void Dispose() { foreach (var (_, t) in all) t.Dispose(); }
    }

    public static Loaded Load(string path)
    {
        var (tensors, meta) = TensorFile.Read(path);
        try
        {
            if (!meta.TryGetValue(ModelFile.FormatKey, out var f) || f != FormatValue || !meta.TryGetValue("state", out var json))
                throw new ModelFileException(path, "not a TransferSharp training checkpoint");
            return new Loaded(TrainingJson.Deserialize<TrainingState>(path, "state", json), tensors);
        }
        catch
        {
            foreach (var (_, t) in tensors) t.Dispose();
            throw;
        }
    }
}
