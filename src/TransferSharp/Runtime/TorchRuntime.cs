using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Runtime;

/// <summary>What `transfer doctor` reports: which LibTorch loaded, from where, with how many threads.</summary>
public sealed record RuntimeReport(
    string TransferSharpVersion, string TorchSharpVersion, string LibTorchVersion, string? LibTorchSharpPath,
    int IntraOpThreads, int InterOpThreads, int ProcessorCount, bool CudaAvailable, int CudaDevices,
    string Os, string Cpu, string? SystemLibStdCxx, bool SystemHasGlibcxx3432, bool LibTorchSharpPatched,
    string CacheDirectory, bool Offline, bool AllocatorTuned, Avx512KernelFaultMitigation Avx512Mitigation,
    MklCodePathChoice MklCodePath);

/// <summary>What <see cref="TorchRuntime.AvoidAvx512KernelFault"/> found and did.</summary>
public enum Avx512KernelFaultMitigation
{
    /// <summary>Not asked for in this process: oneDNN picks its kernels itself (AVX-512 where the CPU has it).</summary>
    NotRequested,
    /// <summary>oneDNN is restricted to AVX2 kernels in this process (set before LibTorch loaded).</summary>
    Applied,
    /// <summary>The process environment already sets ONEDNN_MAX_CPU_ISA; that value is left as it is.</summary>
    SetByEnvironment,
    /// <summary>No AVX-512 here (or not Linux on x64, where the fault was never seen): nothing to avoid, nothing changed.</summary>
    NotApplicable,
    /// <summary>TRANSFERSHARP_AVX512=1: the user keeps the AVX-512 kernels, nothing changed.</summary>
    OptedOut,
    /// <summary>LibTorch was already loaded, so oneDNN may have chosen its kernels already: nothing changed. Call it first thing in <c>Main</c>.</summary>
    TooLate,
}

/// <summary>Device selection, allocator tuning, and facts about the loaded LibTorch.</summary>
public static partial class TorchRuntime
{
    private static int _allocatorTuned;
    private static int _avx512Mitigation; // an Avx512KernelFaultMitigation

    /// <summary>True when <see cref="TuneAllocator"/> changed glibc's malloc settings in this process.</summary>
    public static bool AllocatorTuned => _allocatorTuned == 1;

    /// <summary>
    /// glibc's malloc serves every block over 32 MB with a fresh mmap and returns it to the kernel on
    /// free, so each training step or batch page-faults its large activations back in (measured here:
    /// 3× slower allocate-and-fill of 51 MB tensors, and a quarter of ResNet-50's eval time). Raising
    /// the mmap and trim thresholds keeps freed activation memory in the heap for reuse. One arena: a
    /// thread other than the main one allocates from its own arena, whose heaps are at most 64 MB and
    /// are trimmed on free, so a server's batching thread page-faulted its large activations back in
    /// on every batch whatever the thresholds (30 % of its time in the kernel; mobilenet_v2 served at
    /// batch 10 ran 2.3× faster per image with one arena). But the arena limit binds only arenas made
    /// after it: .NET's own threads have made several before <c>Main</c>, and a new thread is handed one
    /// of them (a serving process had 7, LibTorch's activations in two non-main ones). Transparent huge pages
    /// for LibTorch's blocks (THP_MEM_ALLOC_ENABLE=1 in the environment before start) cut those faults further (a
    /// mobilenet_v2 serving bench: 160k page faults instead of 955k) but are not set here: the 10,000-image soak
    /// through one Predictor then held 800–990 MB instead of 510–630 MB and kept growing (12 % against 10 % for the
    /// bound in docs/reliability.md); a host that wants the speed sets the variable itself. This changes the whole process, so the library never calls it by itself: a host opts in (the
    /// `transfer` command does at start-up; TRANSFERSHARP_MALLOC_TUNING=0 makes this a no-op).
    /// Returns true when the settings were applied (now or by an earlier call).
    /// </summary>
    public static bool TuneAllocator()
    {
        if (Interlocked.CompareExchange(ref _allocatorTuned, 2, 0) != 0) return AllocatorTuned;
        if (Environment.GetEnvironmentVariable("TRANSFERSHARP_MALLOC_TUNING") is "0" or "false" or "off" || !OperatingSystem.IsLinux())
            return false;
        try
        {
            const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3, M_ARENA_MAX = -8;
            bool ok = Mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 && Mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1
                && Mallopt(M_ARENA_MAX, 1) == 1;
            if (ok) _allocatorTuned = 1;
            return ok;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // not glibc (musl, …): nothing to tune
        }
    }

    /// <summary>
    /// Turns LibTorch's NNPACK convolution backend off for the whole process, as PyTorch's
    /// <c>torch.backends.nnpack.set_flags(False)</c> does (TorchSharp 0.107 has no binding for it). LibTorch considers NNPACK
    /// for every convolution of a batch of 16 or more images; where NNPACK cannot start (on this project's AMD EPYC:
    /// "Could not initialize NNPACK! Reason: Unsupported hardware") it tries again and prints that warning on every such
    /// convolution: 440–730 stderr lines in a few seconds of serving mobilenet_v2, none with NNPACK off. Where NNPACK cannot
    /// start, the convolutions run the same kernels either way. Like <see cref="TuneAllocator"/> this changes the whole
    /// process, so the library never calls it by itself: a host opts in (`transfer serve` does; TRANSFERSHARP_NNPACK=1 leaves
    /// NNPACK on). Returns true when NNPACK is off (now or by an earlier call); loads LibTorch if it is not loaded yet.
    /// </summary>
    public static unsafe bool DisableNnpack()
    {
        if (Environment.GetEnvironmentVariable("TRANSFERSHARP_NNPACK") is "1" or "true" or "on") return false;
        _ = get_num_threads(); // loads LibTorch
        var path = LoadedLibraryPath("libtorch_cpu");
        if (path is null || !NativeLibrary.TryLoad(path, out var library)) return false;
        // at::globalContext() and at::Context::setUserEnabledNNPACK(bool) / userEnabledNNPACK(): the C++ entry points
        // behind torch.backends.nnpack, by their Itanium-ABI names (a member function takes `this` first).
        if (!NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled)
            || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context17userEnabledNNPACKEv", out var getEnabled))
            return false;
        var context = ((delegate* unmanaged<nint>)globalContext)();
        ((delegate* unmanaged<nint, byte, void>)setEnabled)(context, 0);
        return ((delegate* unmanaged<nint, byte>)getEnabled)(context) == 0;
    }

    /// <summary>What <see cref="AvoidAvx512KernelFault"/> did in this process (<see cref="Avx512KernelFaultMitigation.NotRequested"/> before it is called).</summary>
    public static Avx512KernelFaultMitigation Avx512Mitigation => (Avx512KernelFaultMitigation)Volatile.Read(ref _avx512Mitigation);

    /// <summary>
    /// Restricts LibTorch's oneDNN to AVX2 kernels (<c>ONEDNN_MAX_CPU_ISA=AVX2</c>) for the whole process, to avoid a platform
    /// fault: on this project's Linux x64 machine with AVX-512 (AMD EPYC), oneDNN's AVX-512 convolutions (forward and
    /// backward) return NaN while another thread of the process is busy beside them — 290 of 300 repeated convolutions
    /// with a thread allocating (so the GC suspends threads), 34 of 60 with a thread that merely spins, 0 with no such
    /// thread or with AVX2 (docs/reliability.md, "Known platform fault"). MKL's matrix products, depthwise convolutions and
    /// elementwise kernels were not affected. The cost of AVX2 is in docs/benchmarks.md ("oneDNN AVX-512 vs AVX2").
    /// oneDNN reads the variable once, at its first kernel, from the native environment, which
    /// <see cref="Environment.SetEnvironmentVariable(string, string?)"/> does not reach on Unix: this sets it with libc's
    /// <c>setenv</c> (and in .NET's copy, for child processes), so it must run before LibTorch loads — first thing in
    /// <c>Main</c>, before any other thread could read the environment. After LibTorch loaded it changes nothing and
    /// returns <see cref="Avx512KernelFaultMitigation.TooLate"/>: whether oneDNN already chose cannot be told from outside.
    /// Like <see cref="TuneAllocator"/> this changes the whole process, so the library never calls it by itself: a host
    /// opts in (the `transfer` command does; TRANSFERSHARP_AVX512=1 makes this a no-op). A value of ONEDNN_MAX_CPU_ISA the
    /// process was started with is kept. Calling it again returns the first call's result.
    /// </summary>
    public static Avx512KernelFaultMitigation AvoidAvx512KernelFault()
    {
        lock (MitigationLock)
        {
            if (Avx512Mitigation == Avx512KernelFaultMitigation.NotRequested)
                Volatile.Write(ref _avx512Mitigation, (int)DecideAvx512Mitigation());
            return Avx512Mitigation;
        }
    }

    private static readonly object MitigationLock = new();

    /// <summary>
    /// Whether oneDNN in this process may run the AVX-512 convolutions of the platform fault (<see cref="AvoidAvx512KernelFault"/>):
    /// a Linux x64 CPU with AVX-512 where the host did not restrict oneDNN (not asked, opted out, or asked too late).
    /// Code that would run convolutions on two threads at once (the server's workers) runs them on one where this is true.
    /// </summary>
    public static bool Avx512KernelFaultExposed => Avx512Mitigation switch
    {
        Avx512KernelFaultMitigation.Applied or Avx512KernelFaultMitigation.NotApplicable or Avx512KernelFaultMitigation.SetByEnvironment => false,
        Avx512KernelFaultMitigation.NotRequested => Avx512FaultPlatform(),
        _ => true,
    };

    // CPUID rather than Avx512F.IsSupported: DOTNET_EnableAVX512F=0 hides AVX-512 from .NET, not from oneDNN.
    private static bool Avx512FaultPlatform() =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && X86Base.IsSupported && (X86Base.CpuId(7, 0).Ebx & (1 << 16)) != 0;

    private static Avx512KernelFaultMitigation DecideAvx512Mitigation()
    {
        const string variable = "ONEDNN_MAX_CPU_ISA";
        if (!Avx512FaultPlatform()) return Avx512KernelFaultMitigation.NotApplicable;
        if (Environment.GetEnvironmentVariable("TRANSFERSHARP_AVX512") is "1" or "true" or "on")
            return Avx512KernelFaultMitigation.OptedOut;
        if (LoadedLibraryPath("libtorch_cpu") is not null)
            return Avx512KernelFaultMitigation.TooLate;
        try
        {
            // The native environment, which is what oneDNN reads (.NET's copy may differ from it).
            if (GetEnv(variable) != 0) return Avx512KernelFaultMitigation.SetByEnvironment;
            if (SetEnv(variable, "AVX2", 0) != 0) return Avx512KernelFaultMitigation.NotApplicable;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return Avx512KernelFaultMitigation.NotApplicable; // no libc setenv to reach native code with
        }
        Environment.SetEnvironmentVariable(variable, "AVX2");
        return Avx512KernelFaultMitigation.Applied;
    }

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetEnv(string name);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);

    /// <summary>True when the tensor lives on that device; a device without an index ("cuda") matches any index.</summary>
    public static bool IsOn(Tensor t, Device device) =>
        t.device.type == device.type && (device.index < 0 || t.device.index == device.index);

    /// <summary>
    /// Parses a device name: "cpu" (default), "cuda", "cuda:N", or "auto" (CUDA when this process
    /// has a CUDA build of LibTorch and a GPU, else CPU). Asking for CUDA without it is an error
    /// that says what to reference.
    /// </summary>
    public static Device ParseDevice(string? name)
    {
        var n = (name ?? "cpu").Trim().ToLowerInvariant();
        if (n is "" or "cpu") return CPU;
        if (n == "auto") return cuda.is_available() ? CUDA : CPU;
        if (n.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!cuda.is_available())
                throw new InvalidOptionException("Device", $"device '{name}' asked for, but this process has no CUDA: it loaded a CPU build of LibTorch or sees no GPU. "
                    + "Reference a CUDA build of TorchSharp (e.g. the libtorch-cuda-12.8-linux-x64 package) instead of TorchSharp-cpu, or use the CPU.");
            return torch.device(n);
        }
        throw new InvalidOptionException("Device", $"unknown device '{name}': use cpu, cuda, cuda:N or auto");
    }

    /// <summary>Sets LibTorch's intra-op thread count (0 or less: leave LibTorch's default).</summary>
    public static void SetThreads(int threads)
    {
        if (threads > 0) set_num_threads(threads);
    }

    /// <summary>Collects the runtime report (loads LibTorch if it is not loaded yet).</summary>
    public static RuntimeReport Report()
    {
        var libVersion = __version__;
        var path = LoadedLibraryPath("libLibTorchSharp");
        var (stdcxx, has3432) = SystemLibStdCxx();
        bool patched = path is not null && IsPatched(path);
        return new RuntimeReport(
            typeof(TorchRuntime).Assembly.GetName().Version?.ToString(3) ?? "?",
            typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
            libVersion, path, get_num_threads(), get_num_interop_threads(), Environment.ProcessorCount,
            cuda.is_available(), cuda.is_available() ? cuda.device_count() : 0,
            RuntimeInformation.OSDescription, CpuDescription(), stdcxx, has3432, patched,
            Weights.WeightCache.DefaultRoot, Weights.WeightCache.OfflineFromEnvironment, AllocatorTuned, Avx512Mitigation, MklCodePath);
    }

    private static string CpuDescription()
    {
        string model = "unknown CPU";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? model;
        }
        catch (IOException) { }
        var features = new List<string>();
        if (Avx2.IsSupported) features.Add("AVX2");
        if (Avx512F.IsSupported) features.Add("AVX-512");
        if (Fma.IsSupported) features.Add("FMA");
        return $"{model} ({RuntimeInformation.ProcessArchitecture}{(features.Count > 0 ? ", " + string.Join(", ", features) : "")})";
    }

    private static string? LoadedLibraryPath(string stem) => LoadedLibraryPath(stem, Mappings());

    private static string? LoadedLibraryPath(string stem, IReadOnlyList<(ulong Start, ulong End, string Permissions, string? Path)> mappings) =>
        mappings.Where(m => m.Path is not null && Path.GetFileName(m.Path).StartsWith(stem, StringComparison.Ordinal)).Select(m => m.Path).FirstOrDefault();

    /// <summary>The process's memory mappings from /proc/self/maps: address range, permissions ("r-xp") and the mapped
    /// file (null for anonymous ones); empty where there is no such file.</summary>
    private static IReadOnlyList<(ulong Start, ulong End, string Permissions, string? Path)> Mappings()
    {
        try
        {
            if (!File.Exists("/proc/self/maps")) return [];
            var mappings = new List<(ulong, ulong, string, string?)>();
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var range = parts[0].Split('-');
                mappings.Add((Convert.ToUInt64(range[0], 16), Convert.ToUInt64(range[1], 16), parts[1], parts.Length >= 6 ? parts[5] : null));
            }
            return mappings;
        }
        catch (IOException) { return []; }
    }

    private static (string? Path, bool Has3432) SystemLibStdCxx()
    {
        foreach (var p in new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6" })
        {
            if (!File.Exists(p)) continue;
            var bytes = File.ReadAllBytes(p);
            return (p, bytes.AsSpan().IndexOf("GLIBCXX_3.4.32\0"u8) >= 0);
        }
        return (null, false);
    }

    private static bool IsPatched(string path)
    {
        // The build's fix marks the GLIBCXX_3.4.32 need weak; `ldd` would then say "weak version".
        try
        {
            var b = File.ReadAllBytes(path);
            return b.AsSpan().IndexOf("GLIBCXX_3.4.32\0"u8) >= 0 && WeakVersionNeed(b);
        }
        catch (IOException) { return false; }
    }

    private static bool WeakVersionNeed(byte[] b)
    {
        if (b.Length < 64 || b[4] != 2) return false;
        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3a), shnum = BitConverter.ToUInt16(b, 0x3c);
        for (int i = 0; i < shnum; i++)
        {
            int o = (int)(shoff + (long)i * shentsize);
            if (BitConverter.ToUInt32(b, o + 4) != 0x6ffffffe) continue;
            long off = BitConverter.ToInt64(b, o + 24);
            uint link = BitConverter.ToUInt32(b, o + 40);
            long strtab = BitConverter.ToInt64(b, (int)(shoff + (long)link * shentsize) + 24);
            long vn = off;
            while (true)
            {
                int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                long a = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int k = 0; k < cnt; k++)
                {
                    ushort flags = BitConverter.ToUInt16(b, (int)a + 4);
                    uint name = BitConverter.ToUInt32(b, (int)a + 8);
                    var s = (int)(strtab + name);
                    int e = Array.IndexOf(b, (byte)0, s);
                    if (System.Text.Encoding.ASCII.GetString(b, s, e - s) == "GLIBCXX_3.4.32") return (flags & 2) != 0;
                    uint next = BitConverter.ToUInt32(b, (int)a + 12);
                    if (next == 0) break;
                    a += next;
                }
                uint vnext = BitConverter.ToUInt32(b, (int)vn + 12);
                if (vnext == 0) break;
                vn += vnext;
            }
        }
        return false;
    }
}
