namespace TransferSharp.Training;

/// <summary>Progress of a long step, for progress bars: what is running, how far, how fast.</summary>
/// <param name="Phase">"extract", "train", "validate", "evaluate".</param>
/// <param name="Done">Samples done in this phase.</param>
/// <param name="Total">Samples in this phase.</param>
/// <param name="SamplesPerSecond">Throughput so far.</param>
/// <param name="Epoch">1-based epoch (training), else 0.</param>
/// <param name="Epochs">Epochs in all (training), else 0.</param>
/// <param name="Loss">Running mean loss (training), else null.</param>
public sealed record ProgressInfo(string Phase, long Done, long Total, double SamplesPerSecond, int Epoch = 0, int Epochs = 0, double? Loss = null);
