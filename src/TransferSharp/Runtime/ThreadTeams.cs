using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace TransferSharp.Runtime;

public static partial class TorchRuntime
{
    private static readonly Lazy<(nint OmpSetNumThreads, nint MklSetNumThreadsLocal)> ThreadControls = new(FindThreadControls);

    /// <summary>
    /// Whether <see cref="SetCallingThreadIntraOpThreads"/> can give one thread its own intra-op thread count: LibTorch's
    /// CPU build runs its parallel kernels and oneDNN's on OpenMP (libgomp), whose thread count is kept per calling thread.
    /// False where that runtime is not found (then only the process-wide <see cref="SetThreads"/> exists).
    /// </summary>
    public static bool HasPerThreadIntraOpThreads => ThreadControls.Value.OmpSetNumThreads != 0;

    /// <summary>
    /// Sets how many threads the forward passes started on the calling thread use, leaving every other thread's count and
    /// the process's default as they are — what lets two threads each run a forward pass on one core of two, instead of
    /// both asking for two. <c>torch.set_num_threads</c> would also change the default that threads starting later adopt.
    /// OpenMP keeps the count per thread (libgomp's <c>omp_set_num_threads</c> writes the calling thread's setting, which
    /// LibTorch's <c>parallel_for</c> and oneDNN read through <c>omp_get_max_threads</c>), and MKL's
    /// <c>MKL_Set_Num_Threads_Local</c> does the same for its matrix products. Returns false (and changes nothing) where the
    /// OpenMP runtime is not found.
    /// </summary>
    public static unsafe bool SetCallingThreadIntraOpThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var (omp, mkl) = ThreadControls.Value;
        if (omp == 0) return false;
        // LibTorch initialises a thread's count from the process default at the thread's first parallel call; asking for the
        // count first makes that happen now, so it cannot overwrite the value set below later.
        _ = get_num_threads();
        ((delegate* unmanaged<int, void>)omp)(threads);
        if (mkl != 0) _ = ((delegate* unmanaged<int, int>)mkl)(threads);
        return true;
    }

    private static (nint, nint) FindThreadControls()
    {
        _ = get_num_threads(); // loads LibTorch (and with it its OpenMP runtime)
        nint omp = 0, mkl = 0;
        var mappings = Mappings(); // read once for both libraries
        if (LoadedLibraryPath("libgomp", mappings) is { } gomp && NativeLibrary.TryLoad(gomp, out var g))
            NativeLibrary.TryGetExport(g, "omp_set_num_threads", out omp);
        // MKL's C entry point is MKL_Set_Num_Threads_Local(int) (mkl_service.h maps the lower-case name to it); the exported
        // lower-case symbol is the Fortran one, which takes a pointer.
        if (omp != 0 && LoadedLibraryPath("libtorch_cpu", mappings) is { } cpu && NativeLibrary.TryLoad(cpu, out var c))
            NativeLibrary.TryGetExport(c, "MKL_Set_Num_Threads_Local", out mkl);
        return (omp, mkl);
    }
}
