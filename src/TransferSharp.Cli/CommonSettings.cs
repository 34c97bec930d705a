using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using TransferSharp.Text;

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

/// <summary>Options of the commands that read words from files (word vectors, fastText models).</summary>
public class EncodingSettings : CommonSettings
{
    [CommandOption("--encoding-errors <MODE>")]
    [Description("Words that are not valid UTF-8: fail (stop, naming the byte offset) or replace (with U+FFFD, counted).")]
    [DefaultValue("fail")]
    public string EncodingErrors { get; init; } = "fail";

    public override ValidationResult Validate() =>
        EncodingErrors is "fail" or "replace" ? ValidationResult.Success() : ValidationResult.Error("--encoding-errors is fail or replace");

    internal EncodingErrorMode EncodingErrorMode => EncodingErrors == "replace" ? EncodingErrorMode.Replace : EncodingErrorMode.Fail;
}
