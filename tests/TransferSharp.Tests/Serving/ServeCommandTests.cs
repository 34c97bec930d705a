using System.Diagnostics;
using System.Net;
using System.Text.Json;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Serving;

/// <summary>`transfer serve` as a real process: it listens, answers, and on SIGTERM answers the request in flight and exits 0.</summary>
[Collection("Serving")]
[Trait("Category", "Serving")]
public sealed class ServeCommandTests(ServingFixture fixture)
{
    [Fact]
    public async Task Sigterm_drains_the_request_in_flight_and_exits_0()
    {
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // The first image waits 1.5 s for others: long enough to stop the server while it is in flight.
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "transfer.dll"), "serve", "--model", fixture.ModelPath,
                "--urls", "http://127.0.0.1:0", "--max-delay-ms", "1500", "--max-batch", "64", "--json" },
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null) Assert.Fail("no output: " + await stderr);
            using var listening = JsonDocument.Parse(line!);
            var url = listening.RootElement.GetProperty("urls")[0].GetString()!;
            using var client = new HttpClient { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromSeconds(30) };
            var ready = Stopwatch.StartNew();
            while ((await client.GetAsync("readyz")).StatusCode != HttpStatusCode.OK)
            {
                Assert.True(ready.Elapsed < TimeSpan.FromSeconds(30), "not ready in 30 s");
                await Task.Delay(50);
            }

            var inFlight = client.PostAsync("v1/predict", RunningServer.ImageFile(ServingFixture.Image("cat.jpg")));
            await Task.Delay(300);
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString()])) await kill.WaitForExitAsync();

            var response = await inFlight;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("\"predictions\"", await response.Content.ReadAsStringAsync());
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await stderr}");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public void Bad_flags_are_refused_with_a_message()
    {
        var (code, _, err) = CliRunner.Run("serve", "--model", fixture.ModelPath, "--max-batch", "0");
        Assert.NotEqual(0, code);
        Assert.Contains("--max-batch", err);
        (code, _, err) = CliRunner.Run("serve", "--model", fixture.ModelPath, "--urls", "ftp://x");
        Assert.NotEqual(0, code);
        Assert.Contains("--urls", err);
        (code, _, err) = CliRunner.Run("serve", "--model", fixture.ModelPath, "--workers", "-1");
        Assert.NotEqual(0, code);
        Assert.Contains("--workers", err);
        (code, _, err) = CliRunner.Run("serve", "--model", fixture.ModelPath, "--max-bacth", "8");
        Assert.NotEqual(0, code);
        Assert.Contains("max-bacth", err);
    }
}
