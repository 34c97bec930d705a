namespace TransferSharp;

/// <summary>
/// The root of every error TransferSharp raises for a problem a user can act on: a file that cannot be
/// used, an option out of range, an unknown model or weights name, a failed download, a state dict that
/// does not fit. Catch this type to handle all of them; anything else escaping the library is a bug.
/// </summary>
public class TransferSharpException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TransferSharpException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A file given to TransferSharp is unusable: corrupt, truncated, of the wrong kind, or hostile.
/// The message always names the file and says what was wrong; <see cref="FilePath"/> and
/// <see cref="Reason"/> carry the two parts for programs. Every file problem (checkpoints, model files,
/// ONNX, images, word vectors) derives from this type.
/// </summary>
public class InvalidFileException : TransferSharpException
{
    /// <summary>Creates the exception.</summary>
    public InvalidFileException(string path, string reason, Exception? inner = null) : base($"{path}: {IO.Printable.Of(reason)}", inner)
    {
        FilePath = path;
        Reason = IO.Printable.Of(reason);
    }

    /// <summary>The file.</summary>
    public string FilePath { get; }

    /// <summary>What was wrong with it, without the file name.</summary>
    public string Reason { get; }
}

/// <summary>
/// An option has a value the library cannot use (a non-positive epoch count, an unknown device, a layer
/// group the model lacks). <see cref="Option"/> is the option's name in the API ("Epochs",
/// "Device"); front ends such as the CLI translate it into their own words.
/// </summary>
public sealed class InvalidOptionException : TransferSharpException
{
    /// <summary>Creates the exception for the option <paramref name="option"/>.</summary>
    public InvalidOptionException(string option, string message) : base(message)
    {
        Option = option;
    }

    /// <summary>The option's name in the API (a property of an options record, or a parameter).</summary>
    public string Option { get; }
}
