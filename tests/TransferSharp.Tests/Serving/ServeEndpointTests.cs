using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using TransferSharp.Serving;
using TransferSharp.Vision;
using Xunit;

namespace TransferSharp.Tests.Serving;

/// <summary>The HTTP endpoints against a real Kestrel on 127.0.0.1: answers, limits, batching and metrics.</summary>
[Collection("Serving")]
[Trait("Category", "Serving")]
public sealed class ServeEndpointTests(ServingFixture fixture)
{
    private static readonly string Cat = ServingFixture.Image("cat.jpg"), Coffee = ServingFixture.Image("coffee.jpg");

    private static async Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }

    /// <summary>The server's /metrics now, as a lookup of unlabelled sample values by name.</summary>
    private static async Task<Func<string, double>> Metrics(RunningServer server)
    {
        var lines = (await server.Client.GetStringAsync("metrics")).Split('\n');
        return name => double.Parse(lines.Single(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Predict_answers_what_the_predictor_answers_for_raw_and_multipart_uploads()
    {
        await using var server = await fixture.StartAsync();
        using var model = VisionModel.Load(fixture.ModelPath);
        using var predictor = model.CreatePredictor();
        // One image per forward pass, as the server runs them here (oneDNN's sums depend on the batch size).
        var expected = new[] { predictor.Predict([Cat], top: 3)[0], predictor.Predict([Coffee], top: 3)[0] };

        var raw = await Json(await server.Client.PostAsync("v1/predict?top=3", RunningServer.ImageFile(Cat)), HttpStatusCode.OK);
        var top = raw.GetProperty("predictions")[0].GetProperty("top");
        Assert.Equal(3, top.GetArrayLength());
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expected[0].Top[i].Label, top[i].GetProperty("label").GetString());
            Assert.Equal(expected[0].Top[i].Probability, top[i].GetProperty("probability").GetDouble(), 1e-5);
        }

        using var form = new MultipartFormDataContent
        {
            { RunningServer.ImageFile(Cat), "image", "cat.jpg" },
            { RunningServer.ImageFile(Coffee), "image", "coffee.jpg" },
        };
        var multi = await Json(await server.Client.PostAsync("v1/predict", form), HttpStatusCode.OK);
        var predictions = multi.GetProperty("predictions");
        Assert.Equal(2, predictions.GetArrayLength());
        Assert.Equal("coffee.jpg", predictions[1].GetProperty("source").GetString());
        Assert.Equal(3, predictions[1].GetProperty("top").GetArrayLength()); // three classes, top 5 asked
        Assert.Equal(expected[1].Top[0].Label, predictions[1].GetProperty("top")[0].GetProperty("label").GetString());
    }

    [Fact]
    public async Task Every_image_of_a_batch_is_copied_into_its_own_slot_of_the_batch()
    {
        await using var server = await fixture.StartAsync();
        async Task<float[][]> Vectors(HttpContent body) =>
            (await Json(await server.Client.PostAsync("v1/features", body), HttpStatusCode.OK)).GetProperty("features").EnumerateArray()
                .Select(f => f.GetProperty("vector").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        var cat = (await Vectors(RunningServer.ImageFile(Cat)))[0];
        var coffee = (await Vectors(RunningServer.ImageFile(Coffee)))[0];

        // Three images in one request run as one batch of three: each must come back with its own features, in order.
        using var form = new MultipartFormDataContent
        {
            { RunningServer.ImageFile(Coffee), "image", "coffee.jpg" },
            { RunningServer.ImageFile(Cat), "image", "cat.jpg" },
            { RunningServer.ImageFile(Coffee), "image", "coffee-again.jpg" },
        };
        var batched = await Vectors(form);
        Assert.Equal(3, batched.Length);
        // oneDNN's sums depend on the batch size, so batched and single features agree to rounding, not bit for bit.
        static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
        static double Norm(float[] a) => Math.Sqrt(a.Sum(x => (double)x * x));
        Assert.True(Distance(cat, coffee) > 1e-2 * Norm(cat), "the two images have different features");
        Assert.True(Distance(batched[0], coffee) < 1e-4 * Norm(coffee), "slot 0 holds the coffee");
        Assert.True(Distance(batched[1], cat) < 1e-4 * Norm(cat), "slot 1 holds the cat");
        Assert.True(Distance(batched[2], coffee) < 1e-4 * Norm(coffee), "slot 2 holds the coffee again");
        var metrics = await server.Client.GetStringAsync("metrics");
        Assert.Contains("transfersharp_batch_size_sum 5", metrics); // 1 + 1 + the batch of 3
    }

    [Fact]
    public async Task Features_model_health_metrics_and_openapi_answer()
    {
        await using var server = await fixture.StartAsync();
        var features = await Json(await server.Client.PostAsync("v1/features", RunningServer.ImageFile(Cat)), HttpStatusCode.OK);
        Assert.Equal(512, features.GetProperty("dimension").GetInt32());
        Assert.Equal(512, features.GetProperty("features")[0].GetProperty("vector").GetArrayLength());

        var info = await Json(await server.Client.GetAsync("v1/model"), HttpStatusCode.OK);
        Assert.Equal(["bag", "coat", "sandal"], info.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(32, info.GetProperty("preprocessing").GetProperty("cropSize").GetInt32());
        Assert.Equal(Path.GetFullPath(fixture.ModelPath), info.GetProperty("weights").GetProperty("file").GetString());
        Assert.Equal("torchsharp", info.GetProperty("engine").GetString());

        Assert.Equal("ok", await server.Client.GetStringAsync("healthz"));
        Assert.Equal("ready", await server.Client.GetStringAsync("readyz"));

        var metrics = await server.Client.GetStringAsync("metrics");
        Assert.Contains("transfersharp_http_requests_total{route=\"/v1/features\",status=\"200\"} 1", metrics);
        foreach (var name in new[] { "transfersharp_http_request_duration_seconds_bucket", "transfersharp_batch_size_bucket",
                     "transfersharp_batch_duration_seconds_bucket", "transfersharp_queue_length", "transfersharp_images_total", "transfersharp_images_per_second" })
            Assert.Contains(name, metrics);

        var openApi = await Json(await server.Client.GetAsync("openapi/v1.json"), HttpStatusCode.OK);
        var paths = openApi.GetProperty("paths");
        foreach (var path in new[] { "/v1/predict", "/v1/features", "/v1/model", "/healthz", "/readyz" }) Assert.True(paths.TryGetProperty(path, out _), path);
        Assert.True(paths.GetProperty("/v1/predict").GetProperty("post").GetProperty("requestBody").GetProperty("content").TryGetProperty("multipart/form-data", out _));

        var page = await server.Client.GetStringAsync("");
        Assert.Contains("<input id=\"file\"", page);
        Assert.DoesNotContain("https://", page); // one self-contained page, no CDN
    }

    [Fact]
    public async Task Bad_requests_get_4xx_that_say_why()
    {
        await using var server = await fixture.StartAsync(new ServingOptions { MaxUploadBytes = 100_000, MaxImagePixels = 1_000_000 });
        var client = server.Client;

        async Task Expect(HttpStatusCode status, string because, HttpResponseMessage response)
        {
            var problem = await Json(response, status);
            Assert.Contains(because, problem.GetProperty("detail").GetString());
        }

        await Expect(HttpStatusCode.RequestEntityTooLarge, "larger than the limit",
            await client.PostAsync("v1/predict", RunningServer.ImageBody(new byte[200_000])));
        await Expect(HttpStatusCode.UnsupportedMediaType, "not a recognised image",
            await client.PostAsync("v1/predict", RunningServer.ImageBody("this is not a picture"u8.ToArray())));
        await Expect(HttpStatusCode.UnsupportedMediaType, "is not an image",
            await client.PostAsync("v1/predict", new StringContent("{}", new MediaTypeHeaderValue("application/json"))));
        await Expect(HttpStatusCode.BadRequest, "no body", await client.PostAsync("v1/predict", RunningServer.ImageBody([])));
        await Expect(HttpStatusCode.BadRequest, "top must be", await client.PostAsync("v1/predict?top=0", RunningServer.ImageFile(Cat)));
        await Expect(HttpStatusCode.BadRequest, "no file part",
            await client.PostAsync("v1/predict", new MultipartFormDataContent { { new StringContent("x"), "field" } }));

        // A 2000×2000 PNG is small on the wire but over the pixel limit: refused before decoding.
        var big = Path.Combine(fixture.Dir, "big.png");
        Training.TrainingData.Draw(big, 2000, 2000, SkiaSharp.SKColorType.Gray8, 3);
        Assert.True(new FileInfo(big).Length < 100_000);
        await Expect(HttpStatusCode.RequestEntityTooLarge, "megapixels",
            await client.PostAsync("v1/predict", RunningServer.ImageBody(File.ReadAllBytes(big), "image/png")));

        // The server is unharmed.
        await Json(await client.PostAsync("v1/predict", RunningServer.ImageFile(Cat)), HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after_and_the_queued_requests_still_get_their_answers()
    {
        // The first image waits up to 2 s for company, so the queue stays full meanwhile.
        await using var server = await fixture.StartAsync(new ServingOptions { MaxQueue = 2, MaxBatch = 64, MaxDelay = TimeSpan.FromSeconds(2) });
        var first = server.Client.PostAsync("v1/predict", RunningServer.ImageFile(Cat));
        var second = server.Client.PostAsync("v1/predict", RunningServer.ImageFile(Coffee));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (server.Batcher.Queued < 2 && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        Assert.Equal(2, server.Batcher.Queued);

        var refused = await server.Client.PostAsync("v1/predict", RunningServer.ImageFile(Cat));
        var problem = await Json(refused, HttpStatusCode.TooManyRequests);
        Assert.Contains("queue", problem.GetProperty("detail").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);

        await Json(await first, HttpStatusCode.OK);
        await Json(await second, HttpStatusCode.OK);
        var metrics = await server.Client.GetStringAsync("metrics");
        Assert.Contains("transfersharp_batch_size_sum 2", metrics); // the two queued images ran together (the warm-up is not counted)
        Assert.Contains("transfersharp_batch_size_count 1", metrics);
        Assert.Contains("transfersharp_http_requests_total{route=\"/v1/predict\",status=\"429\"} 1", metrics);
    }

    [Fact]
    public async Task A_request_that_waits_past_its_timeout_gets_503_and_the_server_goes_on()
    {
        await using var server = await fixture.StartAsync(new ServingOptions { MaxDelay = TimeSpan.FromSeconds(1), RequestTimeout = TimeSpan.FromMilliseconds(200) });
        var response = await server.Client.PostAsync("v1/predict", RunningServer.ImageFile(Cat));
        var problem = await Json(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("no answer within", problem.GetProperty("detail").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Concurrent_requests_are_batched_and_a_storm_of_bad_requests_loses_no_good_answer()
    {
        await using var server = await fixture.StartAsync(new ServingOptions { MaxBatch = 8, MaxDelay = TimeSpan.FromMilliseconds(20) });
        var cat = File.ReadAllBytes(Cat);
        var expected = (await Json(await server.Client.PostAsync("v1/predict", RunningServer.ImageBody(cat)), HttpStatusCode.OK))
            .GetProperty("predictions")[0].GetProperty("top")[0].GetProperty("label").GetString();

        var good = Enumerable.Range(0, 24).Select(async _ =>
        {
            var answer = await Json(await server.Client.PostAsync("v1/predict", RunningServer.ImageBody(cat)), HttpStatusCode.OK);
            return answer.GetProperty("predictions")[0].GetProperty("top")[0].GetProperty("label").GetString();
        }).ToArray();
        var bad = Enumerable.Range(0, 24).Select(async i => (await server.Client.PostAsync("v1/predict", (i % 3) switch
        {
            0 => RunningServer.ImageBody(cat.AsSpan(0, cat.Length / 2).ToArray()), // truncated JPEG
            1 => RunningServer.ImageBody("garbage"u8.ToArray()),
            _ => new StringContent("hello"),
        })).StatusCode).ToArray();
        Assert.All(await Task.WhenAll(good), label => Assert.Equal(expected, label));
        Assert.All(await Task.WhenAll(bad), status => Assert.Equal(HttpStatusCode.UnsupportedMediaType, status));

        var Value = await Metrics(server);
        Assert.Equal(25, Value("transfersharp_images_total"));
        Assert.True(Value("transfersharp_batch_size_count") < 25, "24 concurrent requests ran in fewer than 24 forward passes");
    }

    [Fact]
    public async Task Two_workers_run_batches_side_by_side_and_every_answer_is_its_own()
    {
        await using var server = await fixture.StartAsync(new ServingOptions { Workers = 2, MaxBatch = 4, MaxDelay = TimeSpan.FromMilliseconds(20) });
        Assert.Equal(2, server.Batcher.Workers);
        async Task<float[]> Vector(string path) =>
            (await Json(await server.Client.PostAsync("v1/features", RunningServer.ImageFile(path)), HttpStatusCode.OK))
                .GetProperty("features")[0].GetProperty("vector").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var alone = new Dictionary<string, float[]> { [Cat] = await Vector(Cat), [Coffee] = await Vector(Coffee) };

        // 32 requests at once, cat and coffee alternating: batches of up to 4 on both workers, each answer the image's own.
        var paths = Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? Cat : Coffee).ToArray();
        var answers = await Task.WhenAll(paths.Select(Vector));
        static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
        static double Norm(float[] a) => Math.Sqrt(a.Sum(x => (double)x * x));
        for (int i = 0; i < paths.Length; i++)
            Assert.True(Distance(answers[i], alone[paths[i]]) < 1e-4 * Norm(alone[paths[i]]), $"request {i} got the features of {Path.GetFileName(paths[i])}");
        var Value = await Metrics(server);
        Assert.Equal(34, Value("transfersharp_images_total"));
        Assert.True(Value("transfersharp_batch_size_count") < 34, "concurrent requests were batched");
    }

    [Fact]
    public async Task With_two_workers_sixteen_concurrent_requests_split_into_shares_instead_of_one_full_batch()
    {
        // A long gathering window: without the share, the first batch would wait for all 16 and the second worker idle.
        await using var server = await fixture.StartAsync(new ServingOptions { Workers = 2, MaxBatch = 16, MaxDelay = TimeSpan.FromSeconds(2) });
        var cat = File.ReadAllBytes(Cat);
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => server.Client.PostAsync("v1/predict", RunningServer.ImageBody(cat))));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        var Value = await Metrics(server);
        Assert.Equal(16, Value("transfersharp_images_total"));
        Assert.True(Value("transfersharp_batch_size_count") >= 2, "the 16 images ran as at least two batches");
        // No batch above half of the requests in flight (8), once at least four were in flight.
        Assert.Equal(0, Value("transfersharp_batch_size_bucket{le=\"16\"}") - Value("transfersharp_batch_size_bucket{le=\"8\"}"));
    }

    /// <summary>A request body sent in two halves with a pause between: the server has the request (its handler runs)
    /// while the body is still arriving.</summary>
    private sealed class SlowBody(byte[] bytes, TimeSpan pause) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await stream.FlushAsync();
            await Task.Delay(pause);
            await stream.WriteAsync(bytes.AsMemory(bytes.Length / 2));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_batch_past_its_delay_waits_for_a_request_still_arriving_and_not_for_one_that_fails(bool arrivesWhole)
    {
        await using var server = await fixture.StartAsync(new ServingOptions
        {
            Workers = 1, MaxBatch = 8, MaxDelay = TimeSpan.FromMilliseconds(1), MaxArrivalWait = TimeSpan.FromSeconds(20),
        });
        var cat = File.ReadAllBytes(Cat);
        // The slow request is received first; its body (whole, or garbage) completes 400 ms later.
        var body = arrivesWhole ? cat : "not an image at all"u8.ToArray();
        var slow = server.Client.PostAsync("v1/predict", new SlowBody(body, TimeSpan.FromMilliseconds(400)) { Headers = { ContentType = new("image/jpeg") } });
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Batcher.Arriving == 0 && DateTime.UtcNow < deadline) await Task.Delay(5);
        Assert.Equal(1, server.Batcher.Arriving);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var fast = await server.Client.PostAsync("v1/predict", RunningServer.ImageBody(cat));
        Assert.Equal(HttpStatusCode.OK, fast.StatusCode);
        Assert.Equal(arrivesWhole ? HttpStatusCode.OK : HttpStatusCode.UnsupportedMediaType, (await slow).StatusCode);
        // The fast image's batch waited past its 1 ms for the slow one, but only until that one was refused: not 20 s.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the fast request took {clock.Elapsed}");
        var Value = await Metrics(server);
        Assert.Equal(arrivesWhole ? 2 : 1, Value("transfersharp_images_total"));
        Assert.Equal(1, Value("transfersharp_batch_size_count"));
        Assert.Equal(0, server.Batcher.Arriving);
    }

    [Fact]
    public void Workers_are_what_is_asked_and_one_for_onnx_runtime_when_left_to_choose()
    {
        using var torch = ServedModel.Load(fixture.ModelPath);
        using var ort = ServedModel.Load(fixture.ModelPath, engine: "onnxruntime");
        Assert.Equal(3, new ServingOptions { Workers = 3 }.WorkersFor(torch));
        Assert.Equal(1, new ServingOptions().WorkersFor(ort));
        // Two only where each thread can have its own thread count and concurrent convolutions are safe here.
        int chosen = new ServingOptions().WorkersFor(torch);
        Assert.Equal(TorchSharp.torch.get_num_threads() >= 2 && Runtime.TorchRuntime.HasPerThreadIntraOpThreads
            && !Runtime.TorchRuntime.Avx512KernelFaultExposed ? 2 : 1, chosen);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ServingOptions { Workers = -1 }.Validate());
    }

    [Fact]
    public async Task The_onnxruntime_engine_serves_the_same_classes()
    {
        await using var torch = await fixture.StartAsync();
        await using var ort = await fixture.StartAsync(engine: "onnxruntime");
        var a = await Json(await torch.Client.PostAsync("v1/predict", RunningServer.ImageFile(Cat)), HttpStatusCode.OK);
        var b = await Json(await ort.Client.PostAsync("v1/predict", RunningServer.ImageFile(Cat)), HttpStatusCode.OK);
        var (ta, tb) = (a.GetProperty("predictions")[0].GetProperty("top"), b.GetProperty("predictions")[0].GetProperty("top"));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(ta[i].GetProperty("label").GetString(), tb[i].GetProperty("label").GetString());
            Assert.Equal(ta[i].GetProperty("probability").GetDouble(), tb[i].GetProperty("probability").GetDouble(), 1e-3);
        }
        Assert.Equal("onnxruntime", (await Json(await ort.Client.GetAsync("v1/model"), HttpStatusCode.OK)).GetProperty("engine").GetString());
    }
}
