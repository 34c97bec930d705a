using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;
using TransferSharp.Vision.Inference;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Serving;

/// <summary>
/// Puts a model behind HTTP in any ASP.NET Core app: <c>builder.Services.AddTransferSharp(model)</c>, then
/// <c>app.MapTransferSharp()</c>. Endpoints (relative to where they are mapped): <c>POST v1/predict</c>,
/// <c>POST v1/features</c>, <c>GET v1/model</c>, <c>GET healthz</c>, <c>GET readyz</c>, <c>GET metrics</c> and the page at
/// <c>GET /</c>. Errors are RFC 9457 problem documents that say what was wrong with the request.
/// </summary>
public static class TransferSharpEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Registers the model (the container owns and disposes it), the batcher and the metrics.</summary>
    public static IServiceCollection AddTransferSharp(this IServiceCollection services, ServedModel model, ServingOptions? options = null)
    {
        options ??= new ServingOptions();
        options.Validate();
        services.AddSingleton(model);
        services.AddSingleton(options);
        services.AddSingleton(_ => new ServingMetrics(options.MaxBatch));
        services.AddSingleton<DynamicBatcher>();
        return services;
    }

    /// <summary>Maps the endpoints (under <paramref name="prefix"/>, "" for the root) and starts warming the model up.</summary>
    public static RouteGroupBuilder MapTransferSharp(this IEndpointRouteBuilder endpoints, string prefix = "")
    {
        var services = endpoints.ServiceProvider;
        var model = services.GetRequiredService<ServedModel>();
        var options = services.GetRequiredService<ServingOptions>();
        var metrics = services.GetRequiredService<ServingMetrics>();
        var batcher = services.GetRequiredService<DynamicBatcher>(); // created now: the warm-up starts at once

        var group = endpoints.MapGroup(prefix);
        group.AddEndpointFilter(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            var http = context.HttpContext;
            var route = (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? http.Request.Path.Value ?? "";
            try
            {
                var result = await next(context);
                int status = result is IStatusCodeHttpResult { StatusCode: { } s } ? s : http.Response.StatusCode;
                metrics.Request(route, status, Stopwatch.GetElapsedTime(started));
                return result;
            }
            catch
            {
                metrics.Request(route, StatusCodes.Status500InternalServerError, Stopwatch.GetElapsedTime(started));
                throw;
            }
        });

        // The page's links are relative: under a prefix it must be fetched as "/prefix/", not "/prefix".
        group.MapGet("/", (HttpContext http) => http.Request.Path.Value?.EndsWith('/') == false
                ? Results.Redirect(http.Request.PathBase + http.Request.Path + "/" + http.Request.QueryString)
                : Results.Content(Page.Value, "text/html; charset=utf-8"))
            .ExcludeFromDescription();
        group.MapPost("/v1/predict", (Func<HttpContext, Task<IResult>>)(http => Answer(http, ImageTask.Classify, model, options, batcher)))
            .WithName("Predict").WithSummary("Top classes with probabilities for one image (raw body) or several (multipart form data).")
            .AddOpenApiOperationTransformer(ImageBody)
            .Produces<PredictResponse>().ProducesProblem(400).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429).ProducesProblem(503);
        group.MapPost("/v1/features", (Func<HttpContext, Task<IResult>>)(http => Answer(http, ImageTask.Features, model, options, batcher)))
            .WithName("Features").WithSummary("Pooled feature vectors for one image (raw body) or several (multipart form data).")
            .AddOpenApiOperationTransformer(ImageBody)
            .Produces<FeaturesResponse>().ProducesProblem(400).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429).ProducesProblem(503);
        group.MapGet("/v1/model", () => Results.Json(Describe(model, options), Json))
            .WithName("Model").WithSummary("The served model: architecture, classes, preprocessing, weights provenance, batching and limits.")
            .Produces<ModelResponse>();
        group.MapGet("/healthz", () => Results.Text("ok"))
            .WithName("Health").WithSummary("200 while the process runs.");
        group.MapGet("/readyz", () => batcher.IsReady ? Results.Text("ready")
                : batcher.Ready.IsFaulted ? Results.Problem($"the model failed its warm-up: {batcher.Ready.Exception!.InnerException!.Message}", statusCode: 503)
                : Results.Problem("the model is warming up", statusCode: 503))
            .WithName("Ready").WithSummary("200 once the model is loaded and has run a warm-up batch; 503 before.");
        group.MapMetrics("/metrics", metrics.Registry)
            .WithDisplayName("Prometheus metrics");
        return group;
    }

    // The body is read by hand (to answer 413/415 with reasons), so the OpenAPI document is told what it accepts; an
    // Accepts() call would instead make routing refuse other content types with a bare 415.
    private static Task ImageBody(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellation)
    {
        var binary = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" };
        var content = new Dictionary<string, OpenApiMediaType>();
        foreach (var type in new[] { "image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "application/octet-stream" })
            content[type] = new OpenApiMediaType { Schema = binary };
        content["multipart/form-data"] = new OpenApiMediaType
        {
            Schema = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "one file part per image",
                AdditionalProperties = binary,
            },
        };
        operation.RequestBody = new OpenApiRequestBody { Required = true, Description = "One image as the body, or several as multipart file parts.", Content = content };
        operation.Parameters ??= [];
        if (context.Description.RelativePath?.EndsWith("predict", StringComparison.Ordinal) == true)
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = "top", In = ParameterLocation.Query, Description = "How many classes per image (default 5).",
                Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
            });
        return Task.CompletedTask;
    }

    private static readonly Lazy<string> Page = new(() =>
    {
        using var stream = typeof(TransferSharpEndpoints).Assembly.GetManifestResourceStream("TransferSharp.Serving.index.html")
            ?? throw new InvalidOperationException("the page resource is missing from TransferSharp.Serving");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private static async Task<IResult> Answer(HttpContext http, ImageTask task, ServedModel model, ServingOptions options, DynamicBatcher batcher)
    {
        string what = $"{http.Request.Method} {http.Request.Path}";
        if (task == ImageTask.Classify && !model.HasClassifier)
            return Problem(400, "No classifier", $"{what}: {model.Name} has no classifier (its output is pooled features); ask POST v1/features instead");
        int top = 5;
        if (http.Request.Query.TryGetValue("top", out var topText) && (!int.TryParse(topText, out top) || top < 1))
            return Problem(400, "Bad parameter", $"{what}: top must be a whole number of at least 1, got '{topText}'");
        if (!batcher.IsReady) return Unavailable(http, what, "the model is warming up");
        using var inFlight = batcher.TrackRequest();

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit) bodyLimit.MaxRequestBodySize = options.MaxUploadBytes;
        if (http.Request.ContentLength > options.MaxUploadBytes) return TooLarge(http, what, options);
        List<(string Name, byte[] Data)> uploads;
        try
        {
            uploads = await ReadUploads(http, what, options);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge(http, what, options);
        }
        catch (BadHttpRequestException e)
        {
            return Problem(e.StatusCode, "Bad request", $"{what}: {e.Message}");
        }
        catch (RequestProblem p)
        {
            return Problem(p.Status, p.Title, p.Message);
        }

        var images = new List<(string, float[])>(uploads.Count);
        foreach (var (name, data) in uploads)
        {
            try
            {
                var image = ImageDecoder.Decode(data, name, options.MaxImagePixels);
                var p = model.Preprocessing;
                var resized = ImageTransforms.ResizeAndCrop(image, p);
                var pixels = new float[p.Channels * p.CropSize * p.CropSize];
                ImageTransforms.Normalize(resized, p, pixels);
                images.Add((name, pixels));
            }
            catch (ImageDecodeException e)
            {
                bool tooBig = e.Reason.Contains("megapixels", StringComparison.Ordinal);
                return Problem(tooBig ? 413 : 415, tooBig ? "Image too large" : "Not an image", $"{what}: {e.Message}");
            }
        }

        ImageResult[] results;
        try
        {
            results = await batcher.RunAsync(images, task, top, options.RequestTimeout, http.RequestAborted, inFlight);
        }
        catch (QueueFullException e)
        {
            http.Response.Headers.RetryAfter = "1";
            return Problem(429, "Queue full", $"{what}: {e.Message}");
        }
        catch (TimeoutException)
        {
            return Unavailable(http, what, $"no answer within {options.RequestTimeout.TotalSeconds:0.###} s (the server is overloaded)");
        }
        catch (ObjectDisposedException)
        {
            return Unavailable(http, what, "the server is shutting down");
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client is gone
        }
        return task == ImageTask.Classify
            ? Results.Json(new PredictResponse(model.Name, results.Select(r => r.Prediction!).ToArray()), Json)
            : Results.Json(new FeaturesResponse(model.Name, results[0].Features!.Length,
                uploads.Select((u, i) => new FeatureVector(u.Name, results[i].Features!)).ToArray()), Json);
    }

    private sealed class RequestProblem(int status, string title, string message) : Exception(message)
    {
        public int Status { get; } = status;
        public string Title { get; } = title;
    }

    private static async Task<List<(string Name, byte[] Data)>> ReadUploads(HttpContext http, string what, ServingOptions options)
    {
        var request = http.Request;
        var type = request.ContentType;
        if (type is not null && type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(http.RequestAborted);
            }
            catch (InvalidDataException e)
            {
                throw new RequestProblem(400, "Bad form", $"{what}: the multipart body cannot be read: {e.Message}");
            }
            if (form.Files.Count == 0) throw new RequestProblem(400, "No image", $"{what}: the form has no file part; send images as file parts (curl -F image=@cat.jpg)");
            if (form.Files.Count > options.MaxImagesPerRequest)
                throw new RequestProblem(400, "Too many images", $"{what}: {form.Files.Count} images in one request, at most {options.MaxImagesPerRequest}");
            var list = new List<(string, byte[])>(form.Files.Count);
            foreach (var file in form.Files)
            {
                using var buffer = new MemoryStream((int)file.Length);
                await file.CopyToAsync(buffer, http.RequestAborted);
                list.Add((string.IsNullOrEmpty(file.FileName) ? file.Name : file.FileName, buffer.ToArray()));
            }
            return list;
        }
        if (type is not null && !type.StartsWith("image/", StringComparison.OrdinalIgnoreCase) && !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            throw new RequestProblem(415, "Unsupported media type", $"{what}: content type '{type}' is not an image; send the image bytes (image/jpeg, image/png, … or application/octet-stream) or multipart/form-data");
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, http.RequestAborted);
        if (body.Length == 0) throw new RequestProblem(400, "Empty body", $"{what}: the request has no body; send the image bytes (curl --data-binary @cat.jpg)");
        return [("body", body.ToArray())];
    }

    // The rest of the body is not read, so the connection cannot carry another request: say so to the client.
    private static IResult TooLarge(HttpContext http, string what, ServingOptions options)
    {
        http.Response.Headers.Connection = "close";
        return Problem(413, "Upload too large", $"{what}: the body is larger than the limit of {options.MaxUploadBytes / 1048576.0:0.##} MB");
    }

    private static IResult Unavailable(HttpContext http, string what, string why)
    {
        http.Response.Headers.RetryAfter = "1";
        return Problem(503, "Unavailable", $"{what}: {why}");
    }

    private static IResult Problem(int status, string title, string detail) => Results.Problem(detail, statusCode: status, title: title);

    private static ModelResponse Describe(ServedModel model, ServingOptions options) => new(
        model.Name, model.Engine, model.HasClassifier, model.Labels.Count, model.Labels, model.Preprocessing, model.Weights,
        new BatchingResponse(options.MaxBatch, options.MaxDelay.TotalMilliseconds, options.MaxQueue),
        new LimitsResponse(options.MaxUploadBytes, options.MaxImagesPerRequest, options.MaxImagePixels, options.RequestTimeout.TotalSeconds));
}

/// <summary>The answer of <c>POST v1/predict</c>: the top classes of every image, in the order sent.</summary>
public sealed record PredictResponse(string Model, IReadOnlyList<Prediction> Predictions);

/// <summary>One image's pooled features.</summary>
public sealed record FeatureVector(string Source, float[] Vector);

/// <summary>The answer of <c>POST v1/features</c>.</summary>
public sealed record FeaturesResponse(string Model, int Dimension, IReadOnlyList<FeatureVector> Features);

/// <summary>How the server batches.</summary>
public sealed record BatchingResponse(int MaxBatch, double MaxDelayMs, int MaxQueue);

/// <summary>What the server accepts.</summary>
public sealed record LimitsResponse(long MaxUploadBytes, int MaxImagesPerRequest, long MaxImagePixels, double RequestTimeoutSeconds);

/// <summary>The answer of <c>GET v1/model</c>.</summary>
public sealed record ModelResponse(string Name, string Engine, bool HasClassifier, int NumClasses, IReadOnlyList<string> Classes,
    Preprocessing Preprocessing, WeightsProvenance? Weights, BatchingResponse Batching, LimitsResponse Limits);
