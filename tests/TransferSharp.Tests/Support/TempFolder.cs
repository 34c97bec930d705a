using System.Text;

namespace TransferSharp.Tests.Support;

/// <summary>A fresh temporary folder for one test class's files, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    /// <summary>The folder.</summary>
    public string Path { get; } = Paths.NewTempDir();

    /// <summary>Writes <paramref name="bytes"/> to a file of the folder and returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        var path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 and returns the path.</summary>
    public string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    /// <inheritdoc />
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
