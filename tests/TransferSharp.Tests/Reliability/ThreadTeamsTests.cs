using TransferSharp.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Reliability;

/// <summary>
/// <see cref="TorchRuntime.SetCallingThreadIntraOpThreads"/>: a thread's own intra-op thread count, which the server's
/// workers use to share the cores; other threads and the process default keep theirs, and the results do not change.
/// </summary>
public class ThreadTeamsTests
{
    private static T OnNewThread<T>(Func<T> f)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { result = f(); }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw new InvalidOperationException("the thread failed", failure);
    }

    [Fact]
    public void One_thread_gets_its_own_count_and_no_other_thread_sees_it()
    {
        Assert.True(TorchRuntime.HasPerThreadIntraOpThreads, "LibTorch's CPU build runs on libgomp, whose count is per thread");
        int before = get_num_threads();
        int processDefault = OnNewThread(get_num_threads);
        var (set, seen) = OnNewThread(() => (TorchRuntime.SetCallingThreadIntraOpThreads(1), get_num_threads()));
        Assert.True(set);
        Assert.Equal(1, seen);
        Assert.Equal(before, get_num_threads());
        Assert.Equal(processDefault, OnNewThread(get_num_threads));
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.SetCallingThreadIntraOpThreads(0));
    }

    [Fact]
    public void A_convolution_on_one_thread_computes_what_it_computes_on_all()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var x = randn([2, 8, 32, 32], generator: generator);
        var w = randn([16, 8, 3, 3], generator: generator);
        var all = nn.functional.conv2d(x, w, padding: [1, 1]);
        var one = OnNewThread(() =>
        {
            TorchRuntime.SetCallingThreadIntraOpThreads(1);
            return nn.functional.conv2d(x, w, padding: [1, 1]);
        });
        Assert.True(allclose(all, one, rtol: 1e-5, atol: 1e-5));
    }
}
