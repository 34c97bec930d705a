using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace TransferSharp.Serving;

/// <summary>
/// The whole server of <c>transfer serve</c>: Kestrel on the given URLs with the TransferSharp endpoints, the OpenAPI
/// document at <c>/openapi/v1.json</c>, and a graceful stop (in-flight requests are answered before it stops). Use <c>http://127.0.0.1:0</c> for a free port and read <see cref="Addresses"/>.
/// </summary>
public static class TransferSharpServer
{
    /// <summary>Builds (does not start) the server; the app owns <paramref name="model"/> from now on. A stop waits up to
    /// <paramref name="drainTimeout"/> (30 s by default) for requests in flight.</summary>
    public static WebApplication Build(ServedModel model, ServingOptions options, IReadOnlyList<string> urls, TimeSpan? drainTimeout = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxUploadBytes);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = drainTimeout ?? TimeSpan.FromSeconds(30));
        builder.Services.AddOpenApi();
        builder.Services.AddTransferSharp(model, options);
        var app = builder.Build();
        app.MapOpenApi();
        app.MapTransferSharp();
        return app;
    }

    /// <summary>The addresses a started server listens on (the real port when 0 was asked).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
}
