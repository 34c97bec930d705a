// MSBuild inline task (RoslynCodeTaskFactory): makes TorchSharp's libLibTorchSharp.so load on
// systems whose libstdc++ predates GLIBCXX_3.4.32 (Debian 12, Ubuntu 22.04).
//
// Why this is safe: g++ 13 makes every translation unit that includes <iostream> reference
// std::ios_base_library_init() (versioned GLIBCXX_3.4.32) only to pull in a libstdc++ that
// initialises iostreams itself. The library never calls it (no relocation names it). Older
// libstdc++ initialises iostreams unconditionally. So we
//   1. mark the GLIBCXX_3.4.32 entry of .gnu.version_r weak (VER_FLG_WEAK): a missing weak
//      version is not an error for the dynamic loader;
//   2. give the symbol no version (.gnu.version entry 1 = global) and weak binding, so an
//      unresolved reference resolves to null instead of failing.
// Where the system libstdc++ already has GLIBCXX_3.4.32 the task does nothing. It patches copies in
// the build output only, never the NuGet cache or a system file, and is idempotent.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class PatchLibTorchSharp : Task
{
    private const string NeededVersion = "GLIBCXX_3.4.32";
    private const ushort VerFlgWeak = 0x2;
    private const uint ShtDynsym = 11, ShtGnuVersym = 0x6fffffff, ShtGnuVerneed = 0x6ffffffe;

    /// <summary>Directories to search (recursively) for libLibTorchSharp.so.</summary>
    [Required] public string[] Directories { get; set; } = Array.Empty<string>();

    /// <summary>Patch even if the system libstdc++ is new enough (tests of this task).</summary>
    public bool Force { get; set; }

    public override bool Execute()
    {
        if (!Force && SystemHasVersion())
        {
            Log.LogMessage(MessageImportance.Low, "TransferSharp: system libstdc++ has " + NeededVersion + "; libLibTorchSharp.so left as is.");
            return true;
        }
        foreach (var dir in Directories)
        {
            if (string.IsNullOrWhiteSpace(dir) || !System.IO.Directory.Exists(dir)) continue;
            foreach (var file in System.IO.Directory.EnumerateFiles(dir, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                try
                {
                    var result = Patch(file);
                    Log.LogMessage(MessageImportance.Normal, "TransferSharp: " + file + ": " + result);
                }
                catch (Exception e)
                {
                    Log.LogWarning("TransferSharp: could not patch " + file + " for older libstdc++: " + e.Message);
                }
            }
        }
        return !Log.HasLoggedErrors;
    }

    private static bool SystemHasVersion()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        var needle = Encoding.ASCII.GetBytes(NeededVersion + "\0");
        foreach (var path in candidates)
        {
            if (File.Exists(path) && IndexOf(File.ReadAllBytes(path), needle) >= 0) return true;
        }
        // Not found where we look (an old libstdc++, or an unusual layout): patching is harmless.
        return false;
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    private struct Section { public uint Type; public long Offset; public long Size; public uint Link; }

    /// <summary>Patches one file in place (through a temporary copy and a rename).</summary>
    public static string Patch(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            return "not an ELF file; skipped";
        if (b[4] != 2 || b[5] != 1) return "not a little-endian ELF64 file; skipped";

        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3a);
        int shnum = BitConverter.ToUInt16(b, 0x3c);
        var sections = new Section[shnum];
        for (int i = 0; i < shnum; i++)
        {
            long o = shoff + (long)i * shentsize;
            sections[i] = new Section
            {
                Type = BitConverter.ToUInt32(b, (int)o + 4),
                Offset = BitConverter.ToInt64(b, (int)o + 24),
                Size = BitConverter.ToInt64(b, (int)o + 32),
                Link = BitConverter.ToUInt32(b, (int)o + 40),
            };
        }
        int dynsym = Array.FindIndex(sections, s => s.Type == ShtDynsym);
        int versym = Array.FindIndex(sections, s => s.Type == ShtGnuVersym);
        int verneed = Array.FindIndex(sections, s => s.Type == ShtGnuVerneed);
        if (dynsym < 0 || versym < 0 || verneed < 0) return "no symbol versioning; nothing to do";
        long strtab = sections[sections[dynsym].Link].Offset;

        // 1. The Vernaux entry naming GLIBCXX_3.4.32: mark weak, remember its version index.
        int versionIndex = -1;
        bool changed = false;
        long vn = sections[verneed].Offset;
        while (true)
        {
            int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
            uint aux = BitConverter.ToUInt32(b, (int)vn + 8);
            uint next = BitConverter.ToUInt32(b, (int)vn + 12);
            long a = vn + aux;
            for (int k = 0; k < cnt; k++)
            {
                ushort flags = BitConverter.ToUInt16(b, (int)a + 4);
                ushort other = BitConverter.ToUInt16(b, (int)a + 6);
                uint name = BitConverter.ToUInt32(b, (int)a + 8);
                uint anext = BitConverter.ToUInt32(b, (int)a + 12);
                if (ReadCString(b, strtab + name) == NeededVersion)
                {
                    versionIndex = other;
                    if ((flags & VerFlgWeak) == 0)
                    {
                        WriteUInt16(b, a + 4, (ushort)(flags | VerFlgWeak));
                        changed = true;
                    }
                }
                if (anext == 0) break;
                a += anext;
            }
            if (next == 0) break;
            vn += next;
        }
        if (versionIndex < 0) return "does not need " + NeededVersion + "; nothing to do";

        // 2. Every dynamic symbol bound to that version: unversioned and weak.
        long count = sections[dynsym].Size / 24;
        for (long i = 0; i < count; i++)
        {
            long vs = sections[versym].Offset + 2 * i;
            int v = BitConverter.ToUInt16(b, (int)vs) & 0x7fff;
            if (v != versionIndex) continue;
            long so = sections[dynsym].Offset + 24 * i;
            ushort shndx = BitConverter.ToUInt16(b, (int)so + 6);
            if (shndx != 0) throw new InvalidDataException("a symbol defined (not referenced) with " + NeededVersion + "; refusing to patch");
            WriteUInt16(b, vs, 1);
            b[so + 4] = (byte)((2 << 4) | (b[so + 4] & 0xf)); // STB_WEAK, same type
            changed = true;
        }
        if (!changed) return "already patched";

        var tmp = path + ".transfersharp-tmp";
        File.WriteAllBytes(tmp, b);
        File.Replace(tmp, path, null);
        return "patched (" + NeededVersion + " made weak)";
    }

    private static string ReadCString(byte[] b, long offset)
    {
        int end = (int)offset;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)offset, end - (int)offset);
    }

    private static void WriteUInt16(byte[] b, long offset, ushort value)
    {
        b[offset] = (byte)value;
        b[offset + 1] = (byte)(value >> 8);
    }
}
