using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
// The measurements of docs/reliability.md ("Known platform fault"): one kernel repeated N times on fresh clones while a
// second thread of the process does PERTURB; counts the runs with NaN and those off the first result.
// usage: repro KERNEL N   KERNEL: conv convbwd dwconv matmul linear linearbwd eltwise
// env PERTURB (what the second thread does): alloc (default: 4 KB arrays, so the GC runs) | none (no second thread) |
//   spin | sleep | signal / signal-idle (a signal with a libc no-op handler, busy / every 1 ms) | activation (SIGRTMIN,
//   .NET's own) | membarrier / membarrier-idle | yield
// env SET (how oneDNN is restricted): none | dotnet (Environment.SetEnvironmentVariable) | setenv (libc, after LibTorch
//   loaded) | setenv-late (after one run) | dnnl (dnnl_set_max_cpu_isa through libtorch_cpu's .symtab; needs `nm`) |
//   mkl | mklenv | threads | nnpack
string kernel = args.Length > 0 ? args[0] : "conv";
int n = args.Length > 1 ? int.Parse(args[1]) : 1000;
string perturb = Environment.GetEnvironmentVariable("PERTURB") ?? "alloc";
string set = Environment.GetEnvironmentVariable("SET") ?? "none";
if (set == "dotnet") Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", "AVX2");
_ = get_num_threads(); // LibTorch loaded from here on
if (set == "threads") set_num_threads(2);
if (set == "nnpack") Console.WriteLine($"nnpack off: {Native.NnpackOff()}");
Console.WriteLine($"threads {get_num_threads()}");
if (set == "setenv") Native.setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
if (set == "mkl") Console.WriteLine($"mkl_serv_enable_instructions(AVX2) = {Native.mkl_serv_enable_instructions(2)}");
if (set == "mklenv") Native.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2", 1);
if (set == "dnnl") Console.WriteLine($"dnnl_set_max_cpu_isa(avx2) = {Native.Dnnl("dnnl_set_max_cpu_isa", 0x7)}");
var gen = new Generator(1);
Func<Tensor> run;
switch (kernel)
{
    case "conv": { var x = rand([1, 24, 128, 128], generator: gen) * 2 - 1; var w = randn([96, 24, 3, 3], generator: gen) * 0.1;
        run = () => { using var _ = no_grad(); return nn.functional.conv2d(x.clone(), w.clone(), padding: [1, 1]); }; break; }
    case "dwconv": { var x = rand([1, 96, 128, 128], generator: gen) * 2 - 1; var w = randn([96, 1, 3, 3], generator: gen) * 0.3;
        run = () => { using var _ = no_grad(); return nn.functional.conv2d(x.clone(), w.clone(), padding: [1, 1], groups: 96); }; break; }
    case "convbwd": { var x = rand([1, 24, 128, 128], generator: gen) * 2 - 1; var w = randn([96, 24, 3, 3], generator: gen) * 0.1;
        run = () => { var xi = x.clone().requires_grad_(); var wi = w.clone().requires_grad_();
            nn.functional.conv2d(xi, wi, padding: [1, 1]).square().sum().backward();
            return cat([xi.grad!.flatten(), wi.grad!.flatten()]); }; break; }
    case "matmul": { var a = randn([512, 768], generator: gen); var b = randn([768, 768], generator: gen) * 0.05;
        run = () => { using var _ = no_grad(); return a.clone().matmul(b.clone()); }; break; }
    case "linear": { var a = randn([8, 197, 768], generator: gen); var w = randn([3072, 768], generator: gen) * 0.03; var bias = randn([3072], generator: gen);
        run = () => { using var _ = no_grad(); return nn.functional.linear(a.clone(), w.clone(), bias.clone()); }; break; }
    case "linearbwd": { var a = randn([8, 197, 768], generator: gen); var w = randn([3072, 768], generator: gen) * 0.03;
        run = () => { var ai = a.clone().requires_grad_(); var wi = w.clone().requires_grad_();
            nn.functional.linear(ai, wi).square().sum().backward(); return cat([ai.grad!.flatten(), wi.grad!.flatten()]); }; break; }
    case "eltwise": { var x = randn([1, 32, 64, 64], generator: gen);
        run = () => { using var _ = no_grad(); var y = x.clone(); return (nn.functional.silu(y) * y.sigmoid() + y.exp().log1p()).sum(1); }; break; }
    default: throw new ArgumentException(kernel);
}
if (set == "setenv-late") { using (NewDisposeScope()) run(); Native.setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1); }
var reference = run();
var stop = false;
int mainTid = Native.gettid();
var churn = new Thread(() =>
{
    var keep = new List<byte[]>();
    while (!Volatile.Read(ref stop))
    {
        switch (perturb)
        {
            case "alloc": keep.Add(new byte[4096]); if (keep.Count > 20000) keep.Clear(); break;
            case "signal": Native.tgkill(Environment.ProcessId, mainTid, Native.QuietSignal); Thread.SpinWait(2000); break;
            case "activation": Native.tgkill(Environment.ProcessId, mainTid, 34 /* SIGRTMIN: .NET's activation signal */); Thread.SpinWait(2000); break;
            case "membarrier": Native.syscall(324, 8 /* MEMBARRIER_CMD_PRIVATE_EXPEDITED */, 0); Thread.SpinWait(2000); break;
            case "spin": Thread.SpinWait(2000); break;
            case "signal-idle": Native.tgkill(Environment.ProcessId, mainTid, Native.QuietSignal); Thread.Sleep(1); break;
            case "membarrier-idle": Native.syscall(324, 8, 0); Thread.Sleep(1); break;
            case "sleep": Thread.Sleep(1); break;
            case "yield": Native.syscall(24 /* sched_yield */, 0, 0); break;
        }
    }
});
if (perturb.StartsWith("membarrier")) Native.syscall(324, 16 /* REGISTER_PRIVATE_EXPEDITED */, 0);
if (perturb.StartsWith("signal")) Native.InstallQuietHandler();
if (perturb != "none") churn.Start();
int nan = 0, wrong = 0;
var sw = System.Diagnostics.Stopwatch.StartNew();
for (int i = 0; i < n; i++)
{
    using var scope = NewDisposeScope();
    var y = run();
    if (!y.isfinite().all().item<bool>()) nan++;
    else if (!y.allclose(reference, 1e-3, 1e-4)) wrong++;
}
Volatile.Write(ref stop, true); if (churn.IsAlive) churn.Join();
Console.WriteLine($"{kernel} x{n} perturb={perturb} set={set} ONEDNN_MAX_CPU_ISA={Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA")} MKL_ENABLE_INSTRUCTIONS={Environment.GetEnvironmentVariable("MKL_ENABLE_INSTRUCTIONS")}: {nan} NaN, {wrong} wrong, {sw.Elapsed.TotalMilliseconds / n:F2} ms each, gen0 GCs {GC.CollectionCount(0)}");

static unsafe partial class Native
{
    [DllImport("libc")] public static extern int setenv(string name, string value, int overwrite);
    [DllImport("libc")] public static extern int gettid();
    [DllImport("libc")] public static extern int tgkill(int tgid, int tid, int sig);
    [DllImport("libc")] public static extern long syscall(long n, long a, long b);
    [DllImport("libc")] static extern int sigaction(int sig, byte* act, byte* old);
    [DllImport("libtorch_cpu")] public static extern int mkl_serv_enable_instructions(int isa);
    public const int QuietSignal = 40;
    public static bool NnpackOff()
    {
        var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).First(p => p.Length >= 6 && p[5].EndsWith("/libtorch_cpu.so"))[5];
        var lib = NativeLibrary.Load(path);
        var ctx = ((delegate* unmanaged<nint>)NativeLibrary.GetExport(lib, "_ZN2at13globalContextEv"))();
        ((delegate* unmanaged<nint, byte, void>)NativeLibrary.GetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb"))(ctx, 0);
        return ((delegate* unmanaged<nint, byte>)NativeLibrary.GetExport(lib, "_ZNK2at7Context17userEnabledNNPACKEv"))(ctx) == 0;
    }
    // A handler that runs no .NET code: libc's getpid (takes the signal number, ignores it, returns).
    public static void InstallQuietHandler()
    {
        var act = stackalloc byte[152]; new Span<byte>(act, 152).Clear();
        *(nint*)act = NativeLibrary.GetExport(NativeLibrary.Load("libc.so.6"), "getpid");
        *(int*)(act + 136) = 0x10000000; // SA_RESTART
        if (sigaction(QuietSignal, act, null) != 0) throw new Exception("sigaction");
    }
    // dnnl_* are local symbols of libtorch_cpu.so: address = load base + st_value from its .symtab (nm).
    public static int Dnnl(string name, int arg)
    {
        var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .First(p => p.Length >= 6 && p[5].EndsWith("/libtorch_cpu.so") && p[2] == "00000000");
        nint baseAddr = (nint)Convert.ToInt64(path[0].Split('-')[0], 16);
        var line = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sh", $"-c \"nm {path[5]} | grep ' {name}$'\"") { RedirectStandardOutput = true })!.StandardOutput.ReadToEnd();
        nint fn = baseAddr + (nint)Convert.ToInt64(line.Split(' ')[0], 16);
        return ((delegate* unmanaged<int, int>)fn)(arg);
    }
}
