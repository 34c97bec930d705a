using System.Diagnostics;
using Xunit;

namespace TransferSharp.Tests.Support;

/// <summary>Runs a sample of samples/ (built with this test project, same configuration) as its own process.</summary>
public static class Samples
{
    /// <summary>samples/NAME/bin/CONFIG/net10.0/NAME.dll, CONFIG being the test assembly's.</summary>
    public static string Dll(string name)
    {
        var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var config = framework.Parent!.Name;
        var dll = Path.Combine(Paths.RepoRoot, "samples", name, "bin", config, framework.Name, name + ".dll");
        Assert.True(File.Exists(dll), $"sample {name} is not built at {dll} (the test project builds it)");
        return dll;
    }

    /// <summary>Runs `dotnet NAME.dll args` in <paramref name="workingDirectory"/> (default the repository root).</summary>
    public static (int Code, string Out, string Err) Run(string name, IEnumerable<string> args, string? workingDirectory = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null) =>
        RunProcess("dotnet", [Dll(name), .. args], workingDirectory ?? Paths.RepoRoot, timeout ?? TimeSpan.FromMinutes(5), environment);

    /// <summary>Runs a process to completion (killed after <paramref name="timeout"/>), capturing its output.</summary>
    public static (int Code, string Out, string Err) RunProcess(string file, IEnumerable<string> args, string workingDirectory, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        if (environment is not null) foreach (var (k, v) in environment) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout}");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
