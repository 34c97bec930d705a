using System.Diagnostics;
using TransferSharp.Vision;
using TransferSharp.IO;
using TransferSharp.Tests.Support;
using TransferSharp.Tests.Training;
using Xunit;

namespace TransferSharp.Tests.Reliability;

/// <summary>
/// A real `transfer` process killed (SIGKILL) in the middle of writing its final file: a model file, a training
/// checkpoint, a Parquet feature file and a word-vector cache. The test hook <see cref="AtomicFile.StallVariable"/>
/// makes the writer stop half-way with part of the data on disk, so the kill lands inside the write every time.
/// Afterwards the final path holds the previous complete file or nothing, and a rerun succeeds and sweeps the debris.
/// </summary>
[Trait("Category", "Reliability")]
public sealed class KillDuringWriteTests : IDisposable
{
    private readonly string _dir = Paths.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "transfer.dll");

    private ProcessStartInfo Start(string? stall, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = _dir };
        info.ArgumentList.Add(Cli);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["TRANSFERSHARP_OFFLINE"] = "1";
        info.Environment["TRANSFERSHARP_HOME"] = Path.Combine(_dir, "home");
        if (stall is not null) info.Environment[AtomicFile.StallVariable] = stall;
        return info;
    }

    /// <summary>Runs to completion; asserts success.</summary>
    private void Run(params string[] args)
    {
        using var p = Process.Start(Start(null, args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "the command did not finish");
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stderr.Result}{stdout.Result}");
    }

    /// <summary>Runs with the stall hook on <paramref name="fileName"/>, waits until the write is half-done, kills the process.</summary>
    private void KillWhileWriting(string fileName, params string[] args)
    {
        using var p = Process.Start(Start(fileName, args))!;
        var stalled = new TaskCompletionSource();
        var log = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            if (e.Data.Contains(AtomicFile.StallVariable + ": stalled")) stalled.TrySetResult();
        };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var exited = p.WaitForExitAsync();
        bool reached = Task.WaitAny([stalled.Task, exited], TimeSpan.FromMinutes(3)) == 0;
        try
        {
            Assert.True(reached, $"the write of {fileName} was never reached: {log}");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.NotEqual(0, p.ExitCode);
    }

    /// <summary>The hidden temporaries of <paramref name="fileName"/> in the folder: the half-written one the kill left.</summary>
    private string[] Temporaries(string fileName) => Directory.GetFileSystemEntries(_dir, $".{fileName}.tmp-*");

    [Fact]
    public void Killed_while_writing_a_model_file_or_a_checkpoint_the_old_file_or_nothing_remains()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        string[] train = ["train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--mode", "head", "--head-solver", "epochs", "--epochs", "2", "--out", model];
        Run(train);
        var before = File.ReadAllBytes(model);

        KillWhileWriting("m.safetensors", [.. train, "--seed", "5"]);
        Assert.Equal(before, File.ReadAllBytes(model));
        Assert.Single(Temporaries("m.safetensors"));

        // The first checkpoint write killed: no checkpoint at all, never a torn one.
        KillWhileWriting("m.safetensors.checkpoint", [.. train, "--seed", "6"]);
        Assert.False(File.Exists(model + ".checkpoint"));
        Assert.Equal(before, File.ReadAllBytes(model));

        Run([.. train, "--seed", "7"]);
        using (var trained = TransferSharp.Vision.VisionModel.Load(model)) Assert.Equal(2, trained.Labels.Count);
        Assert.Empty(Temporaries("m.safetensors"));
        Assert.Empty(Temporaries("m.safetensors.checkpoint"));
    }

    [Fact]
    public void Killed_while_writing_parquet_features_nothing_remains_and_the_rerun_resumes()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "sandal");
        var features = Path.Combine(_dir, "f.parquet");
        string[] extract = ["extract", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--out", features];

        KillWhileWriting("f.parquet", extract);
        Assert.False(File.Exists(features));
        Assert.NotEmpty(Directory.GetFiles(features + ".partial", "chunk-*")); // the finished chunks, kept for the rerun
        Assert.Single(Temporaries("f.parquet"));

        Run(extract);
        var bytes = File.ReadAllBytes(features);
        Assert.Equal("PAR1"u8.ToArray(), bytes[..4]);
        Assert.Equal("PAR1"u8.ToArray(), bytes[^4..]);
        Assert.False(Directory.Exists(features + ".partial"));
        Assert.Empty(Temporaries("f.parquet"));
    }

    [Fact]
    public async Task Ctrl_c_in_a_real_process_ends_with_code_130_and_a_message_that_fits_train()
    {
        var data = TrainingData.Folder(Path.Combine(_dir, "data"), 2, "bag", "sandal");
        var model = Path.Combine(_dir, "m.safetensors");
        // `env --default-signal=INT`: the child gets SIGINT's default action even when the test runner ignores it.
        var info = Start(null, ["train", "--model", "resnet18", "--weights", "none", "--image-size", "32", "--data", data, "--mode", "finetune", "--epochs", "200", "--out", model]);
        info.ArgumentList.Insert(0, "dotnet");
        info.ArgumentList.Insert(0, "--default-signal=INT");
        info.FileName = "env";
        using var p = Process.Start(info)!;
        var started = new TaskCompletionSource();
        var log = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            started.TrySetResult();
        };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) started.TrySetResult(); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        await started.Task.WaitAsync(TimeSpan.FromMinutes(2));
        using (var kill = Process.Start("bash", ["-c", $"kill -INT {p.Id}"])) kill.WaitForExit();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(1)), "Ctrl+C did not stop training");
        p.WaitForExit();
        var text = log.ToString();
        Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {text}");
        Assert.Contains("cancelled", text);
        Assert.Contains("--resume", text.Replace("\n", " "));
        Assert.DoesNotContain("download", text);
        Assert.False(File.Exists(model));
        Assert.Empty(Temporaries("m.safetensors"));
    }

    [Fact]
    public void Killed_while_writing_a_vector_cache_the_old_cache_remains()
    {
        var glove = Path.Combine(_dir, "glove.txt");
        File.WriteAllLines(glove, Enumerable.Range(0, 300).Select(i => $"w{i} {string.Join(' ', Enumerable.Range(0, 8).Select(j => ((i * 7 + j) % 13 / 13.0).ToString(System.Globalization.CultureInfo.InvariantCulture)))}"));
        var cache = Path.Combine(_dir, "v.tswv");
        Run("vectors", "convert", "--vectors", glove, "--out", cache);
        var before = File.ReadAllBytes(cache);

        KillWhileWriting("v.tswv", "vectors", "convert", "--vectors", glove, "--out", cache, "--float16");
        Assert.Equal(before, File.ReadAllBytes(cache));
        Assert.Single(Temporaries("v.tswv"));

        Run("vectors", "convert", "--vectors", glove, "--out", cache, "--float16");
        Assert.NotEqual(before, File.ReadAllBytes(cache));
        using var vectors = TransferSharp.Text.WordVectors.Load(cache);
        Assert.Equal(300, vectors.Count);
        Assert.Empty(Temporaries("v.tswv"));
    }
}
