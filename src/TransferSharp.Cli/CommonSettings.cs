using System.ComponentModel;
using Spectre.Console.Cli;

namespace TransferSharp.Cli;

/// <summary>Options every command takes.</summary>
public class CommonSettings : CommandSettings
{
    [CommandOption("--json")]
    [Description("Print machine-readable JSON on stdout instead of tables (progress goes to stderr).")]
    public bool Json { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("cpu (default), cuda, cuda:N or auto. CUDA needs a CUDA build of TorchSharp referenced instead of TorchSharp-cpu.")]
    [DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";

    [CommandOption("--threads <N>")]
    [Description("LibTorch intra-op threads (default: LibTorch's choice, one per core).")]
    [DefaultValue(0)]
    public int Threads { get; init; }
}
