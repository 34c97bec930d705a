using static TorchSharp.torch;

namespace TransferSharp.Text.Classification;

/// <summary>
/// Adam (Kingma and Ba; torch.optim.Adam's rule, L2 weight decay added to the gradient) over parameter groups
/// with their own learning rates. Written out because TorchSharp 0.107's Adam keeps scalars between steps
/// that a per-step dispose scope frees — observed here as "Unknown scalar type" errors and aborts after a
/// few hundred steps; every scalar and temporary here lives only within its step.
/// </summary>
internal sealed class AdamOptimizer(IReadOnlyList<(IReadOnlyList<Tensor> Parameters, double LearningRate)> groups, double weightDecay) : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;
    private readonly Dictionary<Tensor, (Tensor M, Tensor V)> _moments = new(ReferenceEqualityComparer.Instance);
    private long _step;

    public void ZeroGrad()
    {
        foreach (var (parameters, _) in groups)
            foreach (var p in parameters)
                p.grad?.zero_();
    }

    public void Step()
    {
        _step++;
        double bc1 = 1 - Math.Pow(Beta1, _step), bc2 = 1 - Math.Pow(Beta2, _step);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (parameters, lr) in groups)
            foreach (var p in parameters)
            {
                var grad = p.grad;
                if (grad is null) continue;
                if (weightDecay != 0) grad = grad.add(p, alpha: weightDecay);
                if (!_moments.TryGetValue(p, out var state))
                {
                    state = (zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope());
                    _moments[p] = state;
                }
                state.M.mul_(Beta1).add_(grad, alpha: 1 - Beta1);
                state.V.mul_(Beta2).addcmul_(grad, grad, value: 1 - Beta2);
                var denominator = state.V.sqrt().div_(Math.Sqrt(bc2)).add_(Eps);
                p.addcdiv_(state.M, denominator, value: -lr / bc1);
            }
    }

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values)
        {
            m.Dispose();
            v.Dispose();
        }
        _moments.Clear();
    }
}
