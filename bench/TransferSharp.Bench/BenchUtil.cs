using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace TransferSharp.Bench;

/// <summary>Timing helpers and machine description shared by the suites.</summary>
public static class BenchUtil
{
    /// <summary>Median seconds of <paramref name="repeats"/> runs after <paramref name="warmup"/> unmeasured ones.</summary>
    public static double MedianSeconds(Action run, int warmup = 1, int repeats = 5)
    {
        for (int i = 0; i < warmup; i++) run();
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Images/s of each run: two warm-up rounds, then <paramref name="repeats"/> rounds in which
    /// every engine runs once in turn, so that load from other processes on the shared machine falls on
    /// all of them alike; the median per engine.</summary>
    public static double[] Interleaved(IReadOnlyList<Action> runs, int batch, int repeats) =>
        InterleavedSeconds(runs.Select(Timed).ToArray(), repeats).Select(s => batch / s).ToArray();

    /// <summary>As <see cref="Interleaved"/>, for runs that report their own seconds (a peer process times its
    /// call itself, without our round trip to it): the median seconds per run.</summary>
    /// <param name="runs">The engines, each timing one call of its own.</param>
    /// <param name="repeats">Timed rounds.</param>
    /// <param name="warmup">Untimed rounds first.</param>
    /// <param name="settle">A pause before each run: threads of the engine that ran last (OpenMP, OpenBLAS) spin for a
    /// while after their work before they sleep, and would otherwise take the CPU from the next engine.</param>
    public static double[] InterleavedSeconds(IReadOnlyList<Func<double>> runs, int repeats, int warmup = 2, TimeSpan settle = default)
    {
        var times = runs.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < repeats + warmup; round++)
        {
            for (int k = 0; k < runs.Count; k++)
            {
                if (settle > TimeSpan.Zero) Thread.Sleep(settle);
                double seconds = runs[k]();
                if (round >= warmup) times[k].Add(seconds);
            }
        }
        return times.Select(t => { t.Sort(); return t[t.Count / 2]; }).ToArray();
    }

    /// <summary>Seconds of one call of <paramref name="run"/> in its own dispose scope, without gradients.</summary>
    public static Func<double> Timed(Action run) => () =>
    {
        using var _ = no_grad();
        var sw = Stopwatch.StartNew();
        using (var scope = NewDisposeScope()) run();
        return sw.Elapsed.TotalSeconds;
    };

    /// <summary>The 1, 5 and 15 minute load averages (what `uptime` prints), "?" where there are none.</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    /// <summary>One line naming the machine, for docs/benchmarks.md.</summary>
    public static string Machine()
    {
        string cpu = "unknown CPU";
        if (File.Exists("/proc/cpuinfo"))
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        long memKb = 0;
        if (File.Exists("/proc/meminfo"))
            long.TryParse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out memKb);
        return $"{cpu}, {Environment.ProcessorCount} cores, {memKb / 1024 / 1024} GB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    /// <summary>Debian packages of the PyTorch peers: Debian's torch calls libblas.so.3, which is the reference BLAS
    /// (~50× slower at matrix products) unless an OpenBLAS package provides it; the pthread build is the one measured.</summary>
    public static readonly string[] TorchPeerPackages = ["python3-torch", "python3-torchvision", "libopenblas0-pthread"];

    /// <summary>Installs the Debian packages a peer or a data folder needs when they are missing (apt-get, as the browser
    /// test installs chromium), so that a fresh machine runs a suite with nothing installed by hand.</summary>
    public static void EnsureDebianPackages(params string[] packages)
    {
        var missing = packages.Where(p => !DebianPackageInstalled(p)).ToArray();
        if (missing.Length == 0) return;
        Console.Error.WriteLine($"installing {string.Join(", ", missing)} with apt-get (needed by this suite)");
        foreach (var command in new[] { "apt-get update -qq", $"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {string.Join(' ', missing)}" })
        {
            using var p = Process.Start(new ProcessStartInfo("sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"`{command}` failed ({p.ExitCode}): {err.Result}");
        }
        var still = missing.Where(p => !DebianPackageInstalled(p)).ToArray();
        if (still.Length > 0) throw new InvalidOperationException($"apt-get ran but {string.Join(", ", still)} is still not installed");
    }

    private static bool DebianPackageInstalled(string package)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("dpkg-query", ["-W", "-f=${Status}", package]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var status = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 && status.Contains("install ok installed", StringComparison.Ordinal);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return true; // not Debian: nothing to install with, the peer says itself what it lacks
        }
    }

    /// <summary>Runs a peer process (python3 script) and returns its stdout; throws with its stderr on failure.</summary>
    public static string RunPeer(string file, IEnumerable<string> arguments, IDictionary<string, string>? env = null, int timeoutSeconds = 3600)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000)) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', arguments)} timed out"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({p.ExitCode}): {stderr.Result}");
        return stdout.Result;
    }

    /// <summary>Peak resident memory of this process (VmHWM), in MB.</summary>
    public static double PeakRssMb()
    {
        if (!File.Exists("/proc/self/status")) return double.NaN;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}

/// <summary>A peer process kept running for a whole suite and driven one JSON line at a time (one command
/// in, one answer out), so that its timed calls can interleave with ours round by round.</summary>
public sealed class LinePeer : IDisposable
{
    private readonly Process process;
    private readonly Task<string> stderr;

    /// <summary>The JSON line the peer printed when it was ready.</summary>
    public JsonElement Hello { get; }

    public LinePeer(string file, IEnumerable<string> arguments, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        stderr = process.StandardError.ReadToEndAsync();
        Hello = ReadAnswer(file);
    }

    /// <summary>Sends one command and waits for its answer.</summary>
    public JsonElement Send(object command)
    {
        process.StandardInput.WriteLine(JsonSerializer.Serialize(command));
        process.StandardInput.Flush();
        return ReadAnswer(JsonSerializer.Serialize(command));
    }

    private JsonElement ReadAnswer(string what)
    {
        var line = process.StandardOutput.ReadLine();
        if (line is null)
        {
            process.WaitForExit();
            throw new InvalidOperationException($"peer {process.StartInfo.FileName} exited ({process.ExitCode}) on {what}: {stderr.Result}");
        }
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    public void Dispose()
    {
        try
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(10_000)) process.Kill(true);
        }
        finally { process.Dispose(); }
    }
}
