using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace TransferSharp.IO;

/// <summary>
/// The one way this library writes a file: under a hidden temporary name in the same folder
/// (<c>.NAME.tmp-PID-GUID</c>), flushed to disk, then renamed into place. Readers never see half a file, and a
/// cancelled, failed or killed write leaves the previous file (if any) intact and no temporary behind (a kill
/// can leave only the hidden temporary, which the next write into that folder removes once its process is gone).
/// </summary>
internal static partial class AtomicFile
{
    /// <summary>Test hook (read only when set, by the kill-during-write tests): when a file of this name is
    /// written, the writer stops half-way, with part of the data flushed to the temporary, and waits to be killed.</summary>
    internal const string StallVariable = "TRANSFERSHARP_TEST_STALL_WRITE";

    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        SweepStale(dir);
        var temp = TempName(full);
        try
        {
            using (var fs = OpenTemp(temp, Path.GetFileName(full)))
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

    /// <summary>Creates a folder with its first contents in one step: filled under a hidden temporary name, then
    /// renamed, so the folder never exists empty or half-filled.</summary>
    public static void CreateDirectory(string path, Action<string> fill)
    {
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        SweepStale(parent);
        var temp = TempName(full);
        try
        {
            Directory.CreateDirectory(temp);
            fill(temp);
            Directory.Move(temp, full);
        }
        catch
        {
            try { Directory.Delete(temp, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static string TempName(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");

    [GeneratedRegex(@"^\..+\.tmp-(?<pid>[0-9]{1,10})-[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex TempPattern();

    /// <summary>
    /// Removes temporaries of our naming in <paramref name="dir"/> left by killed processes: only names that match
    /// <c>.NAME.tmp-PID-GUID</c> exactly, and only when no process with that id is running (a live one may be
    /// writing it; a reused id only delays the removal).
    /// </summary>
    internal static int SweepStale(string dir) => SweepStale(dir, ".*.tmp-*", TempPattern());

    /// <summary>Removes the entries of <paramref name="dir"/> whose names match <paramref name="pattern"/> exactly (its
    /// <c>pid</c> group naming the process that made them) when that process is no longer running; returns how many.</summary>
    internal static int SweepStale(string dir, string searchPattern, Regex pattern)
    {
        int removed = 0;
        try
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir, searchPattern))
            {
                var m = pattern.Match(Path.GetFileName(entry));
                if (!m.Success || !int.TryParse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
                if (IsRunning(pid)) continue;
                try
                {
                    if (Directory.Exists(entry)) Directory.Delete(entry, true);
                    else File.Delete(entry);
                    removed++;
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return removed;
    }

    /// <summary>True when a process with this id runs (ours always does).</summary>
    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        if (OperatingSystem.IsLinux()) return Directory.Exists($"/proc/{pid}");
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static FileStream OpenTemp(string temp, string finalName)
    {
        if (Environment.GetEnvironmentVariable(StallVariable) is { Length: > 0 } stall && stall == finalName)
            return new StallingFileStream(temp);
        return new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
    }

    /// <summary>The test hook's writer: once some data is written it flushes it, then waits (at most two minutes) for
    /// the test to kill the process; the final rename is never reached while it waits.</summary>
    private sealed class StallingFileStream(string path) : FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1)
    {
        private long _written;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Stall(buffer.Length);
            base.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Stall(count);
            base.Write(buffer, offset, count);
        }

        public override void WriteByte(byte value)
        {
            Stall(1);
            base.WriteByte(value);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Stall(count);
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Stall(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush(bool flushToDisk)
        {
            Stall(0);
            base.Flush(flushToDisk);
        }

        private void Stall(int count)
        {
            // Stop before the second write (or the final flush) once data is on disk: the file is half-written.
            if (_written > 0)
            {
                base.Flush(true);
                Console.Error.WriteLine($"{StallVariable}: stalled after {_written} bytes of {Name}");
                Thread.Sleep(TimeSpan.FromMinutes(2));
                throw new IOException($"{StallVariable}: the test did not kill the process");
            }
            _written += count;
        }
    }
}
