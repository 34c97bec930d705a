using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Runtime;

namespace TransferSharp.Cli.Commands;

/// <summary>`transfer doctor`: the facts that explain most "it does not load / it is slow" reports.</summary>
public sealed class DoctorCommand : Command<CommonSettings>
{
    public override int Execute(CommandContext context, CommonSettings settings, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(settings.Threads);
        var r = TorchRuntime.Report();
        if (settings.Json)
        {
            Json.Print(r);
            return 0;
        }
        var t = new Table().AddColumn("").AddColumn("").HideHeaders().Border(TableBorder.Simple);
        void Row(string k, string v) => t.AddRow(new Markup($"[bold]{Markup.Escape(k)}[/]"), new Markup(Markup.Escape(v)));
        Row("TransferSharp", r.TransferSharpVersion);
        Row("TorchSharp", r.TorchSharpVersion);
        Row("LibTorch", r.LibTorchVersion);
        Row("libLibTorchSharp", r.LibTorchSharpPath ?? "(path unknown)");
        Row("threads", $"{r.IntraOpThreads} intra-op, {r.InterOpThreads} inter-op, {r.ProcessorCount} logical CPUs");
        Row("CUDA", r.CudaAvailable ? $"available, {r.CudaDevices} device(s)" : "not available (CPU build of LibTorch, or no GPU)");
        Row("OS", r.Os);
        Row("CPU", r.Cpu);
        Row("libstdc++", r.SystemLibStdCxx is null ? "not found"
            : $"{r.SystemLibStdCxx} ({(r.SystemHasGlibcxx3432 ? "has" : "lacks")} GLIBCXX_3.4.32)");
        Row("Debian 12 fix", r.LibTorchSharpPatched ? "applied to the loaded libLibTorchSharp.so"
            : r.SystemHasGlibcxx3432 ? "not needed" : "not applied (LibTorch loaded anyway)");
        Row("malloc tuning", r.AllocatorTuned ? "on (large tensor buffers are reused, not returned to the kernel; TRANSFERSHARP_MALLOC_TUNING=0 disables)" : "off");
        Row("oneDNN kernels", r.Avx512Mitigation switch
        {
            Avx512KernelFaultMitigation.Applied => "AVX2 (AVX-512 convolutions avoided: they return NaN while another thread of the process is busy; TRANSFERSHARP_AVX512=1 keeps them)",
            Avx512KernelFaultMitigation.SetByEnvironment => $"ONEDNN_MAX_CPU_ISA={Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA")} (set by the environment)",
            Avx512KernelFaultMitigation.OptedOut => "AVX-512 (TRANSFERSHARP_AVX512=1; convolutions can return NaN while another thread of the process is busy)",
            Avx512KernelFaultMitigation.NotApplicable => "as oneDNN chooses (no AVX-512 fault to avoid here)",
            _ => "as oneDNN chooses (AVX-512 where the CPU has it)",
        });
        Row("MKL kernels", r.MklCodePath switch
        {
            MklCodePathChoice.Applied => "by instruction set (MKL's vendor check answered \"Intel\": AVX-512 matrix products on this CPU; TRANSFERSHARP_MKL_INTEL_PATH=0 leaves MKL's choice)",
            MklCodePathChoice.OptedOut => "MKL's own choice by CPU vendor (TRANSFERSHARP_MKL_INTEL_PATH=0: generic AVX2 path on a CPU not Intel's)",
            MklCodePathChoice.NotFound => "MKL's own choice (this LibTorch has no import slot for MKL's vendor check)",
            MklCodePathChoice.NotApplicable => "MKL's own choice (an Intel CPU, or nothing to change here)",
            _ => "MKL's own choice by CPU vendor",
        });
        Row("weights cache", r.CacheDirectory + (r.Offline ? " (offline: TRANSFERSHARP_OFFLINE set)" : ""));
        AnsiConsole.Write(t);
        return 0;
    }
}
