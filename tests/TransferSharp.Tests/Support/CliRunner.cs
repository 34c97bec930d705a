using System.Text.Json;
using Xunit;

namespace TransferSharp.Tests.Support;

/// <summary>Runs the `transfer` CLI in-process through its entry point, capturing stdout and stderr.
/// Tests that use it share the "Console" collection, since they swap the process's console writers.</summary>
public static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var entry = typeof(TransferSharp.Cli.Json).Assembly.EntryPoint!;
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var result = entry.Invoke(null, [args]);
            int code = result is Task<int> t ? t.GetAwaiter().GetResult() : (int)result!;
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    /// <summary>Runs with --json, asserts exit code 0 and parses stdout.</summary>
    public static JsonElement RunJson(params string[] args)
    {
        var (code, output, error) = Run([.. args, "--json"]);
        Assert.True(code == 0, $"exit {code}: {error}");
        return JsonDocument.Parse(output).RootElement;
    }
}
