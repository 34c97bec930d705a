using static TorchSharp.torch;

namespace TransferSharp.Runtime;

/// <summary>
/// PyTorch's dropout with its mask drawn from a given generator. <c>nn.functional.dropout</c> and the <c>Dropout</c>
/// module draw from LibTorch's global generator, which belongs to the host application: the library never touches it.
/// </summary>
internal static class SeededDropout
{
    /// <summary>Zeroes each value with probability <paramref name="p"/> and scales the kept ones by 1/(1 − p), as PyTorch
    /// does in training mode. Returns a new tensor.</summary>
    public static Tensor Apply(Tensor x, double p, Generator generator)
    {
        using var scope = NewDisposeScope();
        var mask = empty_like(x).bernoulli_(1 - p, generator);
        return x.mul(mask).div_(1 - p).MoveToOuterDisposeScope();
    }

    /// <summary>timm's <c>drop_path</c>: zeroes each sample (all of dimension 0's slice) with probability
    /// <paramref name="p"/> and scales the kept ones by 1/(1 − p). Returns a new tensor.</summary>
    public static Tensor ApplyPerSample(Tensor x, double p, Generator generator)
    {
        using var scope = NewDisposeScope();
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = x.shape[0];
        var mask = empty(shape, x.dtype, x.device).bernoulli_(1 - p, generator).div_(1 - p);
        return x.mul(mask).MoveToOuterDisposeScope();
    }
}
