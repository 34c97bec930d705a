using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransferSharp.Vision.Graph;

/// <summary>
/// The executable form of an <see cref="Graph.Op"/>: a TorchSharp module whose parameters and buffers
/// carry PyTorch's names ("weight", "bias", "running_mean", …), so that a graph's state dict
/// equals its reference implementation's.
/// </summary>
public abstract class Layer : nn.Module
{
    /// <summary>Creates a layer for the given op.</summary>
    protected Layer(Op op) : base(op.Kind) { Op = op; }

    /// <summary>The op this layer executes.</summary>
    public Op Op { get; }

    /// <summary>Runs the op. Must return a new tensor handle (never one of its inputs).</summary>
    public abstract Tensor Forward(IReadOnlyList<Tensor> inputs);

    /// <summary>True when <see cref="ForwardInPlace"/> may overwrite one of its inputs (inference only).</summary>
    public virtual bool CanRunInPlace => false;

    /// <summary>True when the op is symmetric in its inputs, so any of them may be the one overwritten.</summary>
    public virtual bool Commutative => false;

    /// <summary>Runs the op writing its result into <c>inputs[target]</c>, which no one else reads
    /// and which already has the output's shape. Returns a new handle to that storage.</summary>
    public virtual Tensor ForwardInPlace(IReadOnlyList<Tensor> inputs, int target) => throw new NotSupportedException();

    /// <summary>Registers the op's declared <see cref="Op.ParameterShapes"/> (parameters as trainable parameters,
    /// buffers as buffers) with the initial values <paramref name="initial"/> gives, so the layer's state dict is
    /// what the op declares.</summary>
    protected void RegisterDeclared(Func<ParameterShape, Tensor> initial)
    {
        foreach (var p in Op.ParameterShapes)
        {
            var name = p.Name == ParameterShape.NodeItself ? NodeTensorName : p.Name;
            if (p.IsBuffer) register_buffer(name, initial(p));
            else register_parameter(name, new Parameter(initial(p), requires_grad: true));
        }
    }

    /// <summary>Where a layer keeps a tensor named by its node (<see cref="ParameterShape.NodeItself"/>): the graph module
    /// registers that same parameter on the parent module under the node's last path segment, so the state dict names it
    /// by the node's path ("cls_token"), as the reference does.</summary>
    internal const string NodeTensorName = "value";

    /// <summary>The parameter named by the node (<see cref="ParameterShape.NodeItself"/>), or null when the op has none.</summary>
    internal Parameter? NodeTensor => Op.ParameterShapes.Any(p => p.Name == ParameterShape.NodeItself && !p.IsBuffer)
        ? get_parameter(NodeTensorName) : null;

    /// <summary>Draws this layer's initial parameters from <paramref name="generator"/> (never from LibTorch's global
    /// generator, which belongs to the host). Layers without random parameters have nothing to draw.</summary>
    internal virtual void ResetParameters(Generator generator) { }

    /// <summary>Registers a child module (when another node's path nests under this one).</summary>
    internal void SetChild(string name, nn.Module child)
    {
        if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name);
        register_module(name, child);
    }

    internal void RemoveChild(string name) { if (_internal_submodules.ContainsKey(name)) _internal_submodules.Remove(name); }

    internal void RemoveParameter(string name) => _internal_params.Remove(name);
}

/// <summary>Ops without parameters, as a function of the inputs.</summary>
public sealed class FunctionalLayer : Layer
{
    private readonly Func<IReadOnlyList<Tensor>, Tensor> _forward;

    /// <summary>Wraps a function.</summary>
    public FunctionalLayer(Op op, Func<IReadOnlyList<Tensor>, Tensor> forward) : base(op) { _forward = forward; }

    /// <inheritdoc />
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => _forward(inputs);
}
