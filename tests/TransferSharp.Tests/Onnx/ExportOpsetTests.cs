using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision.Graph;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>Every op the exporter translates, in one small graph, at each opset it writes: ONNX Runtime
/// on the file equals our eval output (both outputs, two batch sizes), and the file imports back.</summary>
[Trait("Category", "Onnx")]
public class ExportOpsetTests(ITestOutputHelper output)
{
    private static ModelGraph AllOps()
    {
        var b = new GraphBuilder("all_ops", 3, 16, 16);
        var x = b.Add(new Conv2dOp(3, 8, 3, 1, PadSpec.Symmetric(1), 1, WeightStandardizationEps: 1e-6), "stdconv", b.Input);
        x = b.Add(new GroupNormOp(2, 8), "gn", x);
        x = b.Add(new LayerNormOp(8, 1e-6, ChannelsFirst: true), "ln2d", x);
        x = b.Add(new LayerScaleOp(8, 0.5, ChannelsFirst: true), "ls2d", x);
        x = b.Add(new DropPathOp(0.2), "droppath", x);
        x = b.Add(new ActivationOp(ActivationKind.Gelu), "gelu", x);
        x = b.Add(new ActivationOp(ActivationKind.GeluTanh), "gelu_tanh", x);
        x = b.Add(new PadOp(1, 1, 1, 1), "pad", x);
        x = b.Add(new Pool2dOp(PoolKind.Max, 3, 2, PadSpec.None), "pool", x);                       // Pad + MaxPool pattern
        var same = b.Add(new Conv2dOp(8, 8, 3, 1, PadSpec.Same, 1, Groups: 2), "same", x);
        var lower = b.Add(new Conv2dOp(8, 8, 2, 1, new PadSpec(PadKind.SameLower), 1), "lower", x);
        x = b.Add(new BinaryOp(BinaryKind.Add), "sum3", x, same, lower);
        x = b.Add(new BatchNormOp(8), "bn", x);
        x = b.Add(new ActivationOp(ActivationKind.HardSwish), "hswish", x);
        var s = b.Add(new ActivationOp(ActivationKind.Silu), "silu", x);
        var e = b.Add(new ActivationOp(ActivationKind.Elu, 0.7), "elu", x);
        var l = b.Add(new ActivationOp(ActivationKind.LeakyRelu, 0.1), "lrelu", x);
        var h = b.Add(new ActivationOp(ActivationKind.HardSigmoid, 0.2, 0.5), "hsig", x);
        var r6 = b.Add(new ActivationOp(ActivationKind.Relu6), "relu6", x);
        var c = b.Add(new ActivationOp(ActivationKind.Clip, -0.3, 0.4), "clip", x);
        var t = b.Add(new ActivationOp(ActivationKind.Tanh), "tanh", x);
        var sg = b.Add(new ActivationOp(ActivationKind.Sigmoid), "sigmoid", x);
        var th = b.Add(ActivationOp.TorchHardSigmoid, "torch_hsig", x);
        x = b.Add(new ConcatOp(1), "cat", s, e, l, h, r6, c, t, sg, th);                            // 72 channels, 8×8
        x = b.Add(new SliceOp(1, 4, 60, 2), "slice", x);                                             // 28 channels
        x = b.Add(new PadOp(1, 0, 0, 1, Mode: "reflect"), "reflect", x);
        x = b.Add(new ConvTranspose2dOp(28, 6, 3, 2, PadSpec.Symmetric(1), 1, 1), "deconv", x);     // 18×18
        x = b.Add(new Pool2dOp(PoolKind.Avg, 3, 2, PadSpec.Symmetric(1), CeilMode: true, CountIncludePad: false), "avg", x);
        x = b.Add(new ScaleOp(0.5, 0.25), "scale", x);
        x = b.Add(new AdaptiveAvgPool2dOp(5, 5), "adaptive", x);
        b.Features(x);
        var f = b.Add(new FlattenOp(1), "flatten", x);                                              // 150
        var u = b.Add(new SqueezeOp([1], Unsqueeze: true), "unsq", f);
        var tr = b.Add(new TransposeOp([0, 2, 1]), "transpose", u);
        var sq = b.Add(new SqueezeOp([2]), "sq", tr);
        var r = b.Add(new ReshapeOp([0, 6, 25]), "reshape", sq);
        r = b.Add(new LayerNormOp(25), "ln", r);
        r = b.Add(new LayerScaleOp(25), "ls", r);
        var mm = b.Add(new MatMulOp(), "mm", r, b.Add(new TransposeOp([0, 2, 1]), "rt", r));       // [N, 6, 6]
        var ff = b.Add(new FlattenOp(1), "flat2", mm);
        var d = b.Add(new DropoutOp(0.3), "drop", ff);
        var k = b.Add(new ConstantOp([1, 36]), "k", []);
        var m = b.Add(new BinaryOp(BinaryKind.Mul), "mul", d, k);
        var lin = b.Add(new LinearOp(36, 5), "fc", m);
        var sm = b.Add(new SoftmaxOp(1), "softmax", lin);
        return b.Build(sm);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(14)]
    [InlineData(17)]
    [InlineData(18)]
    [InlineData(20)]
    [InlineData(21)]
    public void All_ops_round_trip_at_opset(int opset)
    {
        using var scope = NewDisposeScope();
        using var model = new GraphModule(AllOps());
        var state = model.state_dict();
        ReferenceFill.FillStateDict(state, state.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString().ToLowerInvariant())), 77);
        model.eval();
        var dir = Paths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, $"all_ops_{opset}.onnx");
            OnnxExporter.Export(model, file, new OnnxExportOptions { Opset = opset });
            using var engine = new OnnxRuntimeEngine(file);
            var imported = OnnxImporter.Import(file);
            Assert.Equal(opset, imported.Opset);
            using var back = imported.CreateModule();
            foreach (long n in new long[] { 1, 3 })
            {
                var x = ReferenceFill.Input([n, 3, 16, 16], (ulong)(opset * 10 + n));
                Tensor ours, features;
                using (no_grad())
                {
                    ours = model.forward(x);
                    features = model.PooledFeatures(x);
                }
                double d = (engine.Forward(x) - ours).abs().max().item<float>();
                double df = (engine.PooledFeatures(x) - features).abs().max().item<float>();
                double db;
                using (no_grad()) db = (back.forward(x) - ours).abs().max().item<float>();
                output.WriteLine($"opset {opset}, batch {n}: ORT output {d:G3}, features {df:G3}; re-imported {db:G3}");
                Assert.True(d <= 1e-5 && df <= 1e-4 * Math.Max(1, features.abs().max().item<float>()) && db <= 1e-5,
                    $"opset {opset}: ORT differs by {d:G3} (features {df:G3}), re-import by {db:G3}");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
