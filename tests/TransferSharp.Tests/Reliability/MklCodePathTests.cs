using System.Runtime.InteropServices;
using TransferSharp.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Reliability;

/// <summary>
/// <see cref="TorchRuntime.UseMklIntelCodePath"/>, which the test host calls as the `transfer` command does: the import
/// slot of MKL's vendor check is found in the loaded libtorch_cpu.so, and matrix products afterwards agree with a
/// float64 product as closely as float32 allows (the kernels MKL then picks are its own, not a different algorithm).
/// </summary>
public class MklCodePathTests
{
    [Fact]
    public void The_test_host_asked_and_the_choice_is_final()
    {
        var first = TorchRuntime.MklCodePath;
        Assert.NotEqual(MklCodePathChoice.NotRequested, first);
        Assert.Equal(first, TorchRuntime.UseMklIntelCodePath());
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            && Environment.GetEnvironmentVariable("TRANSFERSHARP_MKL_INTEL_PATH") is null
            && !File.ReadAllText("/proc/cpuinfo").Contains("GenuineIntel", StringComparison.Ordinal))
            Assert.Equal(MklCodePathChoice.Applied, first);
    }

    [Fact]
    public void The_vendor_check_import_slot_is_found_in_libtorch()
    {
        if (!OperatingSystem.IsLinux()) return;
        var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(p => p.Length >= 6 && p[5].EndsWith("/libtorch_cpu.so", StringComparison.Ordinal)).Select(p => p[5]).First();
        var found = ElfImportSlots.Find(path, "mkl_serv_intel_cpu_true");
        Assert.NotNull(found);
        Assert.NotEmpty(found.Value.SlotOffsets);
        Assert.Null(ElfImportSlots.Find(path, "no_such_symbol_in_libtorch"));
    }

    [Fact]
    public void A_file_that_is_not_an_ELF_library_yields_nothing()
    {
        var dir = Directory.CreateTempSubdirectory("mkl-elf");
        try
        {
            var text = Path.Combine(dir.FullName, "not-elf.so");
            File.WriteAllText(text, "this is not an ELF file, but it is long enough to have a 64-byte header to read");
            Assert.Null(ElfImportSlots.Find(text, "mkl_serv_intel_cpu_true"));
            var truncated = Path.Combine(dir.FullName, "truncated.so");
            var header = new byte[64];
            "\x7F"u8.CopyTo(header); "ELF"u8.CopyTo(header.AsSpan(1));
            header[4] = 2; header[5] = 1;
            BitConverter.GetBytes(1L << 40).CopyTo(header, 0x28); // section headers far outside the file
            BitConverter.GetBytes((ushort)64).CopyTo(header, 0x3A);
            BitConverter.GetBytes((ushort)30).CopyTo(header, 0x3C);
            File.WriteAllBytes(truncated, header);
            Assert.Null(ElfImportSlots.Find(truncated, "mkl_serv_intel_cpu_true"));
            Assert.Null(ElfImportSlots.Find(Path.Combine(dir.FullName, "missing.so"), "x"));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Matrix_products_stay_as_exact_as_float32_allows()
    {
        var gen = new TorchSharp.torch.Generator(7);
        using var a = randn([257, 768], generator: gen);
        using var b = randn([768, 1031], generator: gen);
        using var exact = a.to(float64).mm(b.to(float64));
        using var ours = a.mm(b).to(float64);
        double error = (ours - exact).abs().max().item<double>();
        double scale = exact.abs().max().item<double>();
        Assert.True(error <= 1e-5 * scale, $"max error {error} for values up to {scale}");
        using var linear = nn.functional.linear(a, b.t().contiguous()).to(float64);
        Assert.True((linear - exact).abs().max().item<double>() <= 1e-5 * scale);
    }
}
