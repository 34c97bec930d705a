using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TransferSharp.Tests.Support;

/// <summary>
/// A small HTTP/1.1 server on 127.0.0.1 for download tests. Each route serves fixed bytes and can
/// misbehave on purpose: fail with given status codes first, cut the connection in the middle of the
/// body, ignore Range requests, trickle the body slowly, or redirect. One request per connection.
/// </summary>
public sealed class TestHttpServer : IDisposable
{
    public sealed class Route
    {
        public byte[] Body { get; init; } = [];
        /// <summary>Statuses returned (without a body) by the first requests, in order, before serving.</summary>
        public ConcurrentQueue<int> FailFirst { get; init; } = new();
        /// <summary>Answer every request with this status (e.g. 404).</summary>
        public int? FixedStatus { get; init; }
        /// <summary>For the first requests, in order: drop the connection after this many body bytes.</summary>
        public ConcurrentQueue<int> CutAfter { get; init; } = new();
        public bool HonourRange { get; init; } = true;
        /// <summary>Pause after each chunk of the body (to make downloads overlap or to cancel them).</summary>
        public TimeSpan ChunkDelay { get; init; } = TimeSpan.Zero;
        public int ChunkSize { get; init; } = 4096;
        /// <summary>Answer 302 with this location.</summary>
        public string? RedirectTo { get; init; }
    }

    public sealed record Request(string Path, long? RangeStart);

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, Route> _routes = new();
    private readonly Task _loop;

    public TestHttpServer()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptLoop);
    }

    public int Port { get; }

    public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    public ConcurrentQueue<Request> Requests { get; } = new();

    public int RequestCount(string path) => Requests.Count(r => r.Path == path);

    public void Add(string path, Route route) => _routes[path] = route;

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Task.Run(() => Handle(client));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var (path, rangeStart) = await ReadRequest(stream);
                if (path is null) return;
                Requests.Enqueue(new Request(path, rangeStart));
                if (!_routes.TryGetValue(path, out var route))
                {
                    await WriteHead(stream, 404, "Not Found", 0);
                    return;
                }
                if (route.RedirectTo is { } location)
                {
                    await WriteHead(stream, 302, "Found", 0, $"Location: {location}\r\n");
                    return;
                }
                if (route.FixedStatus is int fixedStatus)
                {
                    await WriteHead(stream, fixedStatus, "Fixed", 0);
                    return;
                }
                if (route.FailFirst.TryDequeue(out var failStatus))
                {
                    await WriteHead(stream, failStatus, "Failing On Purpose", 0);
                    return;
                }
                long start = route.HonourRange && rangeStart is long r && r < route.Body.Length ? r : 0;
                long length = route.Body.Length - start;
                if (start > 0)
                    await WriteHead(stream, 206, "Partial Content", length, $"Content-Range: bytes {start}-{route.Body.Length - 1}/{route.Body.Length}\r\n");
                else
                    await WriteHead(stream, 200, "OK", length, "Accept-Ranges: bytes\r\n");
                long limit = route.CutAfter.TryDequeue(out var cut) ? Math.Min(cut, length) : length;
                for (long sent = 0; sent < limit;)
                {
                    int n = (int)Math.Min(route.ChunkSize, limit - sent);
                    await stream.WriteAsync(route.Body.AsMemory((int)(start + sent), n), _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                    sent += n;
                    if (route.ChunkDelay > TimeSpan.Zero) await Task.Delay(route.ChunkDelay, _stop.Token);
                }
                if (limit < length)
                {
                    // Drop the connection mid-body with a reset, as a failing network does.
                    client.Client.LingerState = new LingerOption(true, 0);
                    client.Client.Close();
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away (cancelled download): nothing to do.
            }
        }
    }

    private static async Task<(string? Path, long? RangeStart)> ReadRequest(NetworkStream stream)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 16384)
        {
            if (await stream.ReadAsync(one) == 0) return (null, null);
            buffer.Add(one[0]);
            int c = buffer.Count;
            if (c >= 4 && buffer[c - 4] == '\r' && buffer[c - 3] == '\n' && buffer[c - 2] == '\r' && buffer[c - 1] == '\n') break;
        }
        var lines = Encoding.ASCII.GetString(buffer.ToArray()).Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length < 2) return (null, null);
        long? range = null;
        foreach (var line in lines.Skip(1))
        {
            if (line.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))
            {
                var spec = line["Range:".Length..].Trim();
                if (spec.StartsWith("bytes=", StringComparison.Ordinal) && long.TryParse(spec["bytes=".Length..].Split('-')[0], out var from)) range = from;
            }
        }
        return (parts[1], range);
    }

    private async Task WriteHead(NetworkStream stream, int status, string reason, long contentLength, string extra = "")
    {
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Length: {contentLength}\r\nConnection: close\r\n{extra}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), _stop.Token);
        await stream.FlushAsync(_stop.Token);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
