using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TransferSharp.Text;

/// <summary>
/// The inner loops of similarity search, compiled fully optimised on first call (no tier-0 pass, which for
/// vector code is many times slower and would make the first queries of a session crawl).
/// </summary>
internal static unsafe class Kernels
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 32)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc0);
                acc1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), acc1);
            }
            sum = Vector512.Sum(acc0 + acc1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>scores[i] = (row i · query) / norms[i] for rows [start, end) of a float32 matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CosineScores(VectorStorage storage, float* query, float[] norms, float[] scores, int start, int end)
    {
        int dim = storage.Dim;
        for (int i = start; i < end; i++) scores[i] = Dot((float*)storage.RowPointer(i), query, dim) / norms[i];
    }
}
