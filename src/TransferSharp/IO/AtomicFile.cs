using System.Text;

namespace TransferSharp.IO;

/// <summary>
/// The one way this library writes a file: under a hidden temporary name in the same folder
/// (<c>.NAME.tmp-PID-GUID</c>), flushed to disk, then renamed into place. Readers never see half a file, and a
/// cancelled, failed or killed write leaves the previous file (if any) intact and no temporary behind (a kill
/// can leave only the hidden temporary).
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no byte-order mark).</summary>
    public static void WriteText(string path, string text) => Write(path, fs => fs.Write(new UTF8Encoding(false).GetBytes(text)));
}
