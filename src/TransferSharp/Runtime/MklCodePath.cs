using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace TransferSharp.Runtime;

/// <summary>What <see cref="TorchRuntime.UseMklIntelCodePath"/> found and did.</summary>
public enum MklCodePathChoice
{
    /// <summary>Not asked for in this process: MKL chooses its kernels by CPU vendor.</summary>
    NotRequested,
    /// <summary>MKL's vendor check answers "Intel" in this process, so MKL chooses its kernels by instruction set (AVX-512 where the CPU has it).</summary>
    Applied,
    /// <summary>An Intel CPU (MKL already chooses by instruction set), not Linux on x64, or LibTorch without MKL: nothing to do, nothing changed.</summary>
    NotApplicable,
    /// <summary>TRANSFERSHARP_MKL_INTEL_PATH=0: the user keeps MKL's own choice, nothing changed.</summary>
    OptedOut,
    /// <summary>LibTorch's library does not have the expected MKL import slot (another LibTorch build): nothing changed.</summary>
    NotFound,
}

public static partial class TorchRuntime
{
    private const string MklVendorCheck = "mkl_serv_intel_cpu_true";
    private static int _mklCodePath; // an MklCodePathChoice
    private static readonly object MklLock = new();

    /// <summary>What <see cref="UseMklIntelCodePath"/> did in this process (<see cref="MklCodePathChoice.NotRequested"/> before it is called).</summary>
    public static MklCodePathChoice MklCodePath => (MklCodePathChoice)Volatile.Read(ref _mklCodePath);

    /// <summary>
    /// Lets the MKL inside LibTorch choose its matrix-product kernels by instruction set on a CPU that is not Intel's.
    /// LibTorch links MKL statically and calls it for every float32 matrix product (Linear layers, attention, 1×1
    /// convolutions that are not oneDNN's). MKL asks <c>mkl_serv_intel_cpu_true()</c> and, on another vendor's CPU, takes
    /// its generic AVX2 path whatever the CPU supports: on this project's AMD EPYC (Zen 4, AVX-512) that is 136–151
    /// GFLOP/s for a 2048³ product on 2 threads against 378–396 for ONNX Runtime's MLAS (bench suite <c>gemm</c>), and
    /// MKL_ENABLE_INSTRUCTIONS / MKL_DEBUG_CPU_TYPE no longer change it. The community's workaround is to interpose a
    /// one-line <c>mkl_serv_intel_cpu_true</c> that returns 1 (an LD_PRELOAD library), which needs a compiler and a
    /// restart. This does the same as the dynamic linker would with such a library: libtorch_cpu.so calls the check
    /// through its procedure linkage table, so its import slot for that symbol is pointed at a six-byte native function
    /// (<c>mov eax, 1; ret</c>) in a page of its own. Nothing of MKL's code is changed; the kernels it then picks are
    /// its own, for the instruction set the CPU reports.
    /// <para>Call it before the first matrix product (first thing in <c>Main</c>, after
    /// <see cref="AvoidAvx512KernelFault"/>): MKL may keep a choice it made earlier. It loads LibTorch. Like
    /// <see cref="TuneAllocator"/> it changes the whole process, so the library never calls it by itself: a host opts in
    /// (the `transfer` command does; TRANSFERSHARP_MKL_INTEL_PATH=0 makes this a no-op). Calling it again returns the
    /// first call's result.</para>
    /// </summary>
    public static MklCodePathChoice UseMklIntelCodePath()
    {
        lock (MklLock)
        {
            if (MklCodePath == MklCodePathChoice.NotRequested)
                Volatile.Write(ref _mklCodePath, (int)DecideMklCodePath());
            return MklCodePath;
        }
    }

    private static MklCodePathChoice DecideMklCodePath()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !X86Base.IsSupported || IsIntelCpu())
            return MklCodePathChoice.NotApplicable;
        if (Environment.GetEnvironmentVariable("TRANSFERSHARP_MKL_INTEL_PATH") is "0" or "false" or "off")
            return MklCodePathChoice.OptedOut;
        _ = get_num_threads(); // loads LibTorch
        var path = LoadedLibraryPath("libtorch_cpu");
        if (path is null || !NativeLibrary.TryLoad(path, out var handle)) return MklCodePathChoice.NotApplicable;
        if (!NativeLibrary.TryGetExport(handle, MklVendorCheck, out var function)) return MklCodePathChoice.NotApplicable;
        var found = ElfImportSlots.Find(path, MklVendorCheck);
        if (found is null) return MklCodePathChoice.NotFound;
        // The library's load address: the exported function's address less its value in the file.
        nint loadBase = function - (nint)found.Value.SymbolValue;
        // Each slot must lie in one of the library's mappings and hold what the dynamic linker put there — the function
        // itself (bound) or an address inside the library (its lazy-binding stub) — or the computed addresses are not this
        // library's: then nothing is written.
        var library = Mappings().Where(m => m.Path == path).ToList();
        if (library.Count == 0) return MklCodePathChoice.NotFound;
        ulong first = library.Min(m => m.Start), last = library.Max(m => m.End);
        var slots = new List<(nint Address, bool Writable)>();
        foreach (var offset in found.Value.SlotOffsets)
        {
            nint slot = loadBase + (nint)offset;
            var mapping = library.FirstOrDefault(m => (ulong)slot >= m.Start && (ulong)slot + (ulong)IntPtr.Size <= m.End);
            if (mapping.Path is null || slot % IntPtr.Size != 0) return MklCodePathChoice.NotFound;
            nint current = ReadPointer(slot);
            if (current != function && ((ulong)current < first || (ulong)current >= last)) return MklCodePathChoice.NotFound;
            slots.Add((slot, mapping.Permissions.Length > 1 && mapping.Permissions[1] == 'w'));
        }
        var stub = ReturnOneStub();
        if (stub == 0) return MklCodePathChoice.NotFound;
        foreach (var (slot, writable) in slots)
            if (!WritePointer(slot, stub, writable)) return MklCodePathChoice.NotFound;
        return MklCodePathChoice.Applied;
    }

    private static bool IsIntelCpu()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(vendor, ebx);
        BinaryPrimitives.WriteInt32LittleEndian(vendor[4..], edx);
        BinaryPrimitives.WriteInt32LittleEndian(vendor[8..], ecx);
        return vendor.SequenceEqual("GenuineIntel"u8);
    }

    /// <summary>A page holding <c>mov eax, 1; ret</c>, readable and executable, never freed.</summary>
    private static unsafe nint ReturnOneStub()
    {
        const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
        var page = Mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == -1 || page == 0) return 0;
        ReadOnlySpan<byte> code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        return Mprotect(page, 4096, PROT_READ | PROT_EXEC) == 0 ? page : 0;
    }

    /// <summary>Writes an import slot, making its page writable for the write when RELRO made it read-only.</summary>
    private static unsafe bool WritePointer(nint slot, nint value, bool writable)
    {
        const int PROT_READ = 1, PROT_WRITE = 2;
        nint page = slot & ~(nint)4095;
        if (!writable && Mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0) return false;
        Volatile.Write(ref *(nint*)slot, value); // one aligned 8-byte store: a concurrent call sees the old or the new target
        if (!writable) Mprotect(page, 4096, PROT_READ);
        return true;
    }

    /// <summary>The pointer at an aligned address known to be mapped.</summary>
    private static unsafe nint ReadPointer(nint slot) => Volatile.Read(ref *(nint*)slot);

    [LibraryImport("libc", EntryPoint = "mmap")]
    private static partial nint Mmap(nint address, nint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect")]
    private static partial int Mprotect(nint address, nint length, int protection);
}

/// <summary>
/// Reads an ELF64 shared library's section headers to find where it imports a symbol: the offsets of its procedure
/// linkage (JUMP_SLOT) and global-data (GLOB_DAT) relocations against that dynamic symbol, and the symbol's value.
/// Only the headers, the dynamic symbol table, its strings and the relocation tables are read, not the whole file.
/// </summary>
internal static class ElfImportSlots
{
    private const uint ShtRela = 4, ShtDynsym = 11;
    private const uint RX8664GlobDat = 6, RX8664JumpSlot = 7;

    public static (ulong SymbolValue, IReadOnlyList<ulong> SlotOffsets)? Find(string path, string symbol)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> header = stackalloc byte[64];
            if (file.Read(header) != 64 || !header[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F'])
                || header[4] != 2 || header[5] != 1)
                return null; // not a little-endian ELF64 file
            ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(header[0x28..]);
            int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3A..]);
            int shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3C..]);
            if (shentsize < 64 || shnum == 0) return null;
            var sections = Read(file, (long)shoff, (long)shentsize * shnum);
            (uint Type, ulong Offset, ulong Size, uint Link, ulong EntSize) Section(int i)
            {
                var s = sections.AsSpan(i * shentsize, 64);
                return (BinaryPrimitives.ReadUInt32LittleEndian(s[4..]), BinaryPrimitives.ReadUInt64LittleEndian(s[24..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[32..]), BinaryPrimitives.ReadUInt32LittleEndian(s[40..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[56..]));
            }
            int dynsym = Enumerable.Range(0, shnum).FirstOrDefault(i => Section(i).Type == ShtDynsym, -1);
            if (dynsym < 0) return null;
            var symtab = Section(dynsym);
            if (symtab.EntSize != 24 || symtab.Link >= shnum) return null;
            var symbols = Read(file, (long)symtab.Offset, (long)symtab.Size);
            var strings = Read(file, (long)Section((int)symtab.Link).Offset, (long)Section((int)symtab.Link).Size);
            var wanted = System.Text.Encoding.ASCII.GetBytes(symbol);
            long index = -1;
            ulong value = 0;
            for (long k = 1; k < symbols.Length / 24; k++)
            {
                var entry = symbols.AsSpan((int)(k * 24), 24);
                int name = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry);
                if (name <= 0 || name + wanted.Length >= strings.Length) continue;
                if (!strings.AsSpan(name, wanted.Length).SequenceEqual(wanted) || strings[name + wanted.Length] != 0) continue;
                index = k;
                value = BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
                break;
            }
            if (index < 0 || value == 0) return null;
            var slots = new List<ulong>();
            for (int i = 0; i < shnum; i++)
            {
                var rela = Section(i);
                if (rela.Type != ShtRela || rela.Link != dynsym || rela.EntSize != 24) continue;
                var entries = Read(file, (long)rela.Offset, (long)rela.Size);
                for (int k = 0; k + 24 <= entries.Length; k += 24)
                {
                    ulong info = BinaryPrimitives.ReadUInt64LittleEndian(entries.AsSpan(k + 8));
                    uint type = (uint)(info & 0xFFFFFFFF);
                    if ((long)(info >> 32) == index && type is RX8664JumpSlot or RX8664GlobDat)
                        slots.Add(BinaryPrimitives.ReadUInt64LittleEndian(entries.AsSpan(k)));
                }
            }
            return slots.Count == 0 ? null : (value, slots);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static byte[] Read(FileStream file, long offset, long length)
    {
        if (offset < 0 || length < 0 || length > 256L << 20 || offset + length > file.Length) throw new ArgumentException("section outside the file");
        var buffer = new byte[length];
        file.Position = offset;
        file.ReadExactly(buffer);
        return buffer;
    }
}
