using System.Globalization;
using System.Text;
using Parquet;
using Parquet.Schema;
using TransferSharp.IO;

namespace TransferSharp.Training;

/// <summary>File formats for extracted features.</summary>
public enum FeatureFileFormat
{
    /// <summary>Apache Parquet: path, label, label_index, f0…f(N−1) (float32).</summary>
    Parquet,
    /// <summary>NumPy .npy float32 [N, F], with NAME.index.csv (path,label,label_index) beside it.</summary>
    Npy,
    /// <summary>CSV: path, label, label_index, f0…f(N−1).</summary>
    Csv,
}

/// <summary>Writes feature sets (atomically: temporary name, then rename).</summary>
public static class FeatureFiles
{
    /// <summary>The format an output path's extension asks for.</summary>
    public static FeatureFileFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".parquet" => FeatureFileFormat.Parquet,
        ".npy" => FeatureFileFormat.Npy,
        ".csv" => FeatureFileFormat.Csv,
        var ext => throw new InvalidOptionException("path", $"{path}: unknown feature file type '{ext}'; use .parquet, .npy or .csv"),
    };

    /// <summary>The index file written beside a .npy file.</summary>
    public static string NpyIndexPath(string npyPath) => Path.ChangeExtension(npyPath, null) + ".index.csv";

    /// <summary>Writes a feature set in the given format.</summary>
    public static void Write(FeatureSet set, string path, FeatureFileFormat format)
    {
        switch (format)
        {
            case FeatureFileFormat.Parquet: WriteParquet(set, path); break;
            case FeatureFileFormat.Npy:
                WriteNpy(set, path);
                AtomicFile.WriteText(NpyIndexPath(path), IndexCsv(set));
                break;
            default: WriteCsv(set, path); break;
        }
    }

    private static string Quote(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    private static string IndexCsv(FeatureSet set)
    {
        var sb = new StringBuilder("path,label,label_index\n");
        for (int i = 0; i < set.Count; i++)
            sb.Append(Quote(set.Sources[i])).Append(',').Append(Quote(set.ClassNames[set.Labels[i]])).Append(',').Append(set.Labels[i]).Append('\n');
        return sb.ToString();
    }

    private static void WriteCsv(FeatureSet set, string path) => AtomicFile.Write(path, fs =>
    {
        using var w = new StreamWriter(fs, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        w.Write("path,label,label_index");
        for (int j = 0; j < set.Dimension; j++) w.Write($",f{j}");
        w.Write('\n');
        for (int i = 0; i < set.Count; i++)
        {
            w.Write(Quote(set.Sources[i]));
            w.Write(',');
            w.Write(Quote(set.ClassNames[set.Labels[i]]));
            w.Write(',');
            w.Write(set.Labels[i].ToString(CultureInfo.InvariantCulture));
            for (int j = 0; j < set.Dimension; j++)
            {
                w.Write(',');
                w.Write(set.Values[(long)i * set.Dimension + j].ToString("R", CultureInfo.InvariantCulture));
            }
            w.Write('\n');
        }
    });

    /// <summary>NumPy format 1.0: magic, version, little-endian header length, a Python dict padded to 64 bytes, raw data.</summary>
    private static void WriteNpy(FeatureSet set, string path) => AtomicFile.Write(path, fs =>
    {
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({set.Count}, {set.Dimension}), }}";
        int total = 10 + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        var header = dict + new string(' ', pad) + "\n";
        fs.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        fs.Write(BitConverter.GetBytes((ushort)header.Length));
        fs.Write(Encoding.ASCII.GetBytes(header));
        fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Values.AsSpan()));
    });

    private static void WriteParquet(FeatureSet set, string path) => AtomicFile.Write(path, fs =>
    {
        var pathField = new DataField<string>("path");
        var labelField = new DataField<string>("label");
        var indexField = new DataField<int>("label_index");
        var featureFields = Enumerable.Range(0, set.Dimension).Select(j => new DataField<float>($"f{j}")).ToArray();
        var schema = new ParquetSchema([pathField, labelField, indexField, .. featureFields]);
        Task.Run(async () =>
        {
            await using var writer = await ParquetWriter.CreateAsync(schema, fs);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(pathField, set.Sources, null);
            await group.WriteAsync(labelField, set.Labels.Select(l => set.ClassNames[l]).ToArray(), null);
            await group.WriteAsync<int>(indexField, set.Labels.AsMemory(), null, null, default);
            var column = new float[set.Count];
            for (int j = 0; j < set.Dimension; j++)
            {
                for (int i = 0; i < set.Count; i++) column[i] = set.Values[(long)i * set.Dimension + j];
                await group.WriteAsync<float>(featureFields[j], column.AsMemory(), null, null, default);
            }
        }).GetAwaiter().GetResult();
    });
}
