using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Serving;

/// <summary>The page at GET / in a real browser: Debian's chromium driven by Playwright (its own browser download
/// cannot work offline, so it is pointed at the system browser, installed with apt-get when missing).</summary>
[Collection("Serving")]
[Trait("Category", "Serving")]
[Trait("Category", "Browser")]
public sealed class ServePageBrowserTests(ServingFixture fixture)
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task A_person_picks_an_image_and_sees_the_top_classes_with_bars()
    {
        EnsureChromium();
        await using var server = await fixture.StartAsync();
        var api = await server.Client.PostAsync("v1/predict", RunningServer.ImageFile(ServingFixture.Image("cat.jpg")));
        var expected = (await api.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("predictions")[0].GetProperty("top");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 900, Height = 560 } });
        await page.GotoAsync(server.BaseAddress.ToString());
        await Assertions.Expect(page.Locator("#model")).ToContainTextAsync("model.safetensors");
        await page.Locator("#file").SetInputFilesAsync(ServingFixture.Image("cat.jpg"));
        var rows = page.Locator("#results li");
        await Assertions.Expect(rows).ToHaveCountAsync(expected.GetArrayLength());

        Assert.Equal(expected[0].GetProperty("label").GetString(), await rows.Nth(0).Locator(".label").TextContentAsync());
        Assert.Equal($"{100 * expected[0].GetProperty("probability").GetDouble():F1} %", await rows.Nth(0).Locator(".probability").TextContentAsync());
        var barWidth = await rows.Nth(0).Locator(".fill").EvaluateAsync<double>("e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width");
        Assert.Equal(expected[0].GetProperty("probability").GetDouble(), barWidth, 0.01);

        // The picture the README shows (docs/serve-page.png) is this one: TRANSFERSHARP_SCREENSHOTS=1 writes it there.
        var screenshot = Environment.GetEnvironmentVariable("TRANSFERSHARP_SCREENSHOTS") == "1"
            ? Path.Combine(Paths.RepoRoot, "docs", "serve-page.png") : Path.Combine(fixture.Dir, "serve-page.png");
        await page.ScreenshotAsync(new() { Path = screenshot });
        Assert.True(new FileInfo(screenshot).Length > 10_000);

        // A non-image is refused with the server's reason, shown on the page.
        var text = Path.Combine(fixture.Dir, "notes.png");
        await File.WriteAllTextAsync(text, "not a picture");
        await page.Locator("#file").SetInputFilesAsync(text);
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("not a recognised image");
    }

    /// <summary>Installs Debian's chromium when it is missing (a fresh machine where `dotnet test` is the only command).</summary>
    private static void EnsureChromium()
    {
        if (File.Exists(Chromium)) return;
        foreach (var command in new[] { "apt-get update -qq", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium" })
        {
            using var p = Process.Start(new ProcessStartInfo("sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"`{command}` failed ({p.ExitCode}): {err.Result}");
        }
        Assert.True(File.Exists(Chromium), $"apt-get installed chromium but {Chromium} is missing");
    }
}
