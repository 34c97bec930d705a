using Parquet;
using TransferSharp.Vision;
using TransferSharp.Vision.Zoo;
using TransferSharp.Data;
using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class ExtractionTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class CancelAfter(CancellationTokenSource cts, long samples) : IProgress<ProgressInfo>
    {
        public void Report(ProgressInfo p) { if (p.Done >= samples) cts.Cancel(); }
    }

    [Fact]
    public void InterruptedExtractionResumesAndMatchesAnUninterruptedOne()
    {
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "data"), 6, "bag", "coat", "dress"));
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        var options = new ExtractOptions { ChunkSize = 5, Loader = new LoaderOptions { BatchSize = 4 } };
        var reference = FeatureExtractor.Extract(source, data, options);

        var output = Path.Combine(_dir, "features.npy");
        using (var cts = new CancellationTokenSource())
        {
            Assert.ThrowsAny<OperationCanceledException>(() =>
                FeatureExtractor.ExtractToFile(source, data, output, options, progress: new CancelAfter(cts, 11), cancellation: cts.Token));
        }
        Assert.False(File.Exists(output), "no output until extraction completes");
        var chunks = Directory.GetFiles(output + ".partial", "chunk-*.bin");
        Assert.Equal(2, chunks.Length); // samples 0–9 finished; the chunk cancelled at sample 11 was not kept
        var stamps = chunks.ToDictionary(c => c, File.GetLastWriteTimeUtc);

        var resumed = FeatureExtractor.ExtractToFile(source, data, output, options);
        Assert.False(Directory.Exists(output + ".partial"));
        Assert.Equal(reference.Labels, resumed.Labels);
        Assert.Equal(reference.Sources, resumed.Sources);
        // Batches differ (chunks of 5 vs one pass), and oneDNN's kernels depend on the batch size: equal to rounding.
        for (int i = 0; i < reference.Values.Length; i++)
            Assert.True(Math.Abs(reference.Values[i] - resumed.Values[i]) <= 1e-5 * Math.Max(1, Math.Abs(reference.Values[i])), $"feature {i}: {reference.Values[i]} vs {resumed.Values[i]}");

        // The .npy file: magic, header with the shape, then float32 rows.
        var bytes = File.ReadAllBytes(output);
        Assert.Equal(0x93, bytes[0]);
        Assert.Equal("NUMPY", System.Text.Encoding.ASCII.GetString(bytes, 1, 5));
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.Contains($"'shape': ({data.Count}, 512)", header);
        Assert.Equal(0, (10 + headerLength) % 64);
        Assert.Equal(10 + headerLength + data.Count * 512 * 4, bytes.Length);
        Assert.Equal(resumed.Values[513], BitConverter.ToSingle(bytes, 10 + headerLength + 513 * 4));
        var index = File.ReadAllLines(FeatureFiles.NpyIndexPath(output));
        Assert.Equal("path,label,label_index", index[0]);
        Assert.Equal(data.Count + 1, index.Length);
    }

    [Fact]
    public async Task ParquetAndCsvHoldPathLabelAndFeatureColumns()
    {
        var data = ImageDataset.FromFolder(TrainingData.Folder(Path.Combine(_dir, "data"), 3, "bag", "coat"));
        using var source = VisionModel.Load("resnet18", "none", new ModelOptions { ImageSize = 32 });
        var parquet = Path.Combine(_dir, "f.parquet");
        var set = FeatureExtractor.ExtractToFile(source, data, parquet);
        using (var stream = File.OpenRead(parquet))
        {
            await using var reader = await ParquetReader.CreateAsync(stream);
            var fields = reader.Schema.GetDataFields();
            Assert.Equal(["path", "label", "label_index", "f0"], fields.Take(4).Select(f => f.Name));
            Assert.Equal(3 + 512, fields.Length);
            using var group = reader.OpenRowGroupReader(0);
            Assert.Equal(6, group.RowCount);
            var labels = new string?[6];
            await group.ReadAsync(fields[1], labels.AsMemory(), null, default);
            Assert.Equal("bag,bag,bag,coat,coat,coat", string.Join(",", labels));
            var f7 = new float[6];
            await group.ReadAsync<float>(fields[3 + 7], f7.AsMemory(), null, default);
            Assert.Equal(set.Values[2 * 512 + 7], f7[2]);
        }
        var csv = Path.Combine(_dir, "f.csv");
        FeatureExtractor.ExtractToFile(source, data, csv);
        var lines = File.ReadAllLines(csv);
        Assert.Equal(7, lines.Length);
        Assert.StartsWith("path,label,label_index,f0,f1,", lines[0]);
        var row = lines[4].Split(',');
        Assert.Equal("coat", row[1]);
        Assert.Equal(set.Values[3 * 512], float.Parse(row[3], System.Globalization.CultureInfo.InvariantCulture));
    }
}
