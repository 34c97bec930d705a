using TorchSharp;
using static TorchSharp.torch;

namespace TransferSharp.Training;

/// <summary>Parameters sharing a learning rate (e.g. the head, or the unfrozen body).</summary>
internal sealed class ParamGroup(string name, IReadOnlyList<(string Name, Tensor Param)> parameters, double baseLearningRate)
{
    public string Name { get; } = name;
    public IReadOnlyList<(string Name, Tensor Param)> Parameters { get; } = parameters;
    public double BaseLearningRate { get; } = baseLearningRate;
    public double LearningRate { get; set; } = baseLearningRate;
}

/// <summary>
/// AdamW and SGD with PyTorch's exact update rules (torch.optim, single-tensor path), written out so their
/// state is plain named tensors that a checkpoint stores and restores bit for bit.
/// </summary>
internal sealed class Optimizer : IDisposable
{
    private readonly OptimizerKind _kind;
    private readonly double _weightDecay, _momentum;
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;
    private readonly Dictionary<string, Tensor> _state = new(StringComparer.Ordinal);

    public Optimizer(OptimizerKind kind, IReadOnlyList<ParamGroup> groups, double weightDecay, double momentum)
    {
        _kind = kind;
        Groups = groups;
        _weightDecay = weightDecay;
        _momentum = momentum;
    }

    public IReadOnlyList<ParamGroup> Groups { get; }

    /// <summary>Optimizer steps taken.</summary>
    public long Steps { get; private set; }

    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        foreach (var g in Groups)
            foreach (var (_, p) in g.Parameters)
                p.grad?.zero_();
    }

    // Biases and norm parameters (1-D) take no weight decay: the usual practice (timm, Keras) for fine-tuning.
    private static bool Decays(Tensor p) => p.dim() > 1;

    public void Step()
    {
        Steps++;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var group in Groups)
        {
            double lr = group.LearningRate;
            foreach (var (name, p) in group.Parameters)
            {
                var grad = p.grad;
                if (grad is null) continue;
                double wd = Decays(p) ? _weightDecay : 0;
                if (_kind is OptimizerKind.AdamW or OptimizerKind.Adam)
                {
                    var m = State(name + ".exp_avg", p);
                    var v = State(name + ".exp_avg_sq", p);
                    // AdamW shrinks the weights apart from the moments (decoupled); Adam adds the L2 term to the gradient.
                    if (wd != 0 && _kind == OptimizerKind.AdamW) p.mul_(1 - lr * wd);
                    else if (wd != 0) grad = grad.add(p, wd);
                    m.mul_(Beta1).add_(grad, 1 - Beta1);
                    v.mul_(Beta2).addcmul_(grad, grad, 1 - Beta2);
                    double bc1 = 1 - Math.Pow(Beta1, Steps), bc2 = 1 - Math.Pow(Beta2, Steps);
                    var denom = v.sqrt().div_(Math.Sqrt(bc2)).add_(Eps);
                    p.addcdiv_(m, denom, -lr / bc1);
                }
                else
                {
                    var d = wd != 0 ? grad.add(p, wd) : grad;
                    if (_momentum != 0)
                    {
                        var key = name + ".momentum_buffer";
                        if (!_state.TryGetValue(key, out var buf))
                        {
                            buf = d.clone().DetachFromDisposeScope();
                            _state[key] = buf;
                        }
                        else buf.mul_(_momentum).add_(d);
                        d = buf;
                    }
                    p.add_(d, -lr);
                }
            }
        }
    }

    private Tensor State(string key, Tensor like)
    {
        if (!_state.TryGetValue(key, out var t))
        {
            t = zeros_like(like).DetachFromDisposeScope();
            _state[key] = t;
        }
        return t;
    }

    /// <summary>The state as named tensors (plus the step count), for a checkpoint.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        _state.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value));

    /// <summary>Restores state saved by <see cref="StateTensors"/> (copies; the caller keeps ownership).</summary>
    public void LoadState(IEnumerable<(string Name, Tensor Tensor)> tensors, long steps)
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
        // Each state tensor goes where its parameter lives (a checkpoint is read on the CPU; training may run on a GPU).
        var parameters = Groups.SelectMany(g => g.Parameters).ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            int dot = name.LastIndexOf('.');
            var device = dot > 0 && parameters.TryGetValue(name[..dot], out var p) ? p.device : t.device;
            _state[name] = t.to(device, copy: true).DetachFromDisposeScope();
        }
        Steps = steps;
    }

    public void Dispose()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
    }
}

/// <summary>The learning-rate factor at an optimizer step: linear warm-up, then cosine, step, constant or linear decay.</summary>
internal sealed record LearningRateSchedule(ScheduleKind Kind, long WarmupSteps, long TotalSteps, long StepsPerEpoch, int StepEpochs, double Gamma, double MinFactor)
{
    /// <summary>Factor for the update with index <paramref name="step"/> (0-based) of the stage.</summary>
    public double Factor(long step)
    {
        if (Kind == ScheduleKind.OneCycle) return OneCycle(step);
        if (WarmupSteps > 0 && step < WarmupSteps) return (step + 1) / (double)WarmupSteps;
        switch (Kind)
        {
            case ScheduleKind.Cosine:
                long span = Math.Max(1, TotalSteps - WarmupSteps);
                double progress = Math.Clamp((step - WarmupSteps) / (double)span, 0, 1);
                return MinFactor + (1 - MinFactor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
            case ScheduleKind.Step:
                long epoch = StepsPerEpoch > 0 ? step / StepsPerEpoch : 0;
                return Math.Pow(Gamma, epoch / Math.Max(1, StepEpochs));
            case ScheduleKind.Linear:
                // Hugging Face's get_linear_schedule_with_warmup: 1 at the end of the warm-up, 0 one step after the last.
                return Math.Max(0, (TotalSteps - step) / (double)Math.Max(1, TotalSteps - WarmupSteps));
            default:
                return 1;
        }
    }

    /// <summary>fastai's one cycle (div 25, div_final 1e5): a half cosine up from 1/25 over the warm-up (a quarter of
    /// the stage without one), a half cosine down to 1e-5 over the rest; the last update of the stage is at the floor.</summary>
    private double OneCycle(long step)
    {
        const double start = 1.0 / 25, end = 1e-5;
        long total = Math.Max(1, TotalSteps);
        long up = WarmupSteps > 0 ? Math.Min(WarmupSteps, total) : Math.Max(1, (long)Math.Round(0.25 * total));
        static double Cosine(double from, double to, double t) => to + (from - to) * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(t, 0, 1)));
        if (step < up) return Cosine(start, 1, up == 1 ? 1 : step / (double)(up - 1));
        long down = total - up;
        return down <= 1 ? end : Cosine(1, end, (step - up) / (double)(down - 1));
    }
}
