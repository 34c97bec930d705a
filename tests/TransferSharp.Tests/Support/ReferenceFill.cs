using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Support;

/// <summary>The deterministic fill of ../shared/reference/FILL.md: splitmix64 streams mapped to [-1, 1).</summary>
public static class ReferenceFill
{
    public static ulong SplitMix64(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }

    /// <summary>u(stream, i) in [-1, 1), exact in float32.</summary>
    public static double U(ulong stream, ulong i) => (SplitMix64(unchecked(stream * 4294967296UL + i)) >> 40) / 8388608.0 - 1.0;

    /// <summary>Values of one stream, transformed per element, in parallel.</summary>
    public static float[] Stream(ulong stream, long count, Func<double, double> f)
    {
        var a = new float[count];
        Parallel.For(0, (count + 65535) / 65536, chunk =>
        {
            long start = chunk * 65536, end = Math.Min(count, start + 65536);
            for (long i = start; i < end; i++) a[i] = (float)f(U(stream, (ulong)i));
        });
        return a;
    }

    /// <summary>The rule of FILL.md's table for a tensor of that name and shape.</summary>
    public static Func<double, double> RuleFor(string name, long[] shape)
    {
        if (name.EndsWith("running_var", StringComparison.Ordinal)) return u => 1 + 0.25 * (u + 1);
        if (name.EndsWith("running_mean", StringComparison.Ordinal)) return u => 0.1 * u;
        if (shape.Length <= 1) return name.EndsWith("bias", StringComparison.Ordinal) ? u => 0.1 * u : u => 1 + 0.1 * u;
        long fanIn = 1;
        for (int i = 1; i < shape.Length; i++) fanIn *= shape[i];
        double scale = Math.Sqrt(6.0 / fanIn);
        return u => u * scale;
    }

    /// <summary>FILL.md's values of every floating-point tensor of the fixture's state-dict list, in its
    /// order (integer and bool tensors take no stream index and are not listed).</summary>
    public static IEnumerable<(string Name, long[] Shape, float[] Values)> Values(IEnumerable<(string Name, long[] Shape, string DType)> reference, ulong weightSeed)
    {
        ulong k = 0;
        foreach (var (name, shape, dtype) in reference)
        {
            if (dtype.StartsWith("int", StringComparison.Ordinal) || dtype.StartsWith("uint", StringComparison.Ordinal) || dtype == "bool") continue;
            long count = 1;
            foreach (var d in shape) count *= d;
            yield return (name, shape, Stream(weightSeed * 4096 + k, count, RuleFor(name, shape)));
            k++;
        }
    }

    /// <summary>Fills the model's tensors in the order of the fixture's state-dict list; integer tensors skipped.</summary>
    public static void FillStateDict(IReadOnlyDictionary<string, Tensor> ours, IEnumerable<(string Name, long[] Shape, string DType)> reference, ulong weightSeed)
    {
        using var _ = no_grad();
        foreach (var (name, shape, values) in Values(reference, weightSeed))
        {
            using var src = tensor(values);
            using var shaped = src.reshape(shape);
            ours[name].copy_(shaped);
        }
    }

    /// <summary>The fixture input: element i = u(input_seed * 4096 + 4095, i).</summary>
    public static Tensor Input(long[] shape, ulong inputSeed)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        var values = Stream(inputSeed * 4096 + 4095, count, u => u);
        using var src = tensor(values);
        return src.reshape(shape);
    }
}
