namespace TransferSharp;

/// <summary>
/// A file given to TransferSharp is unusable: corrupt, truncated, of the wrong kind, or hostile.
/// The message always names the file and says what was wrong; <see cref="FilePath"/> and
/// <see cref="Reason"/> carry the two parts for programs.
/// </summary>
public class InvalidFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    public InvalidFileException(string path, string reason, Exception? inner = null) : base($"{path}: {IO.Printable.Of(reason)}", inner)
    {
        FilePath = path;
        Reason = IO.Printable.Of(reason);
    }

    /// <summary>The file.</summary>
    public string FilePath { get; }

    /// <summary>What was wrong with it.</summary>
    public string Reason { get; }
}
