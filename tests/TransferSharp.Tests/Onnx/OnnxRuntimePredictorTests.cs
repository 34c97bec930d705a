using TransferSharp.Onnx;
using TransferSharp.Tests.Support;
using TransferSharp.Vision;
using TransferSharp.Vision.Preprocessing;
using TransferSharp.Vision.Zoo;
using Xunit;
using static TorchSharp.torch;

namespace TransferSharp.Tests.Onnx;

/// <summary>The paths the CLI takes: an exported .onnx file opened as a <see cref="VisionModel"/>
/// (TorchSharp) and by <see cref="OnnxRuntimePredictor"/> (--engine onnxruntime) predicts the same
/// classes with the same labels; resnet18_cntk loads through the weight registry with no download.</summary>
[Trait("Category", "Onnx")]
public class OnnxRuntimePredictorTests
{
    [Fact]
    public void Exported_file_predicts_the_same_in_both_engines()
    {
        var dir = Paths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(5);
            using var source = ModelZoo.Create("mobilenet_v2", new ModelOptions { NumClasses = 4 });
            source.eval();
            var labels = new[] { "ant", "bee", "cat", "dog" };
            var preprocessing = global::TransferSharp.Vision.Preprocessing.Preprocessing.ImageNet with { ResizeSize = 240, CropSize = 224 };
            var file = Path.Combine(dir, "small.onnx");
            OnnxExporter.Export(source, file, new OnnxExportOptions { Preprocessing = preprocessing, Labels = labels, Opset = 13 });

            var images = TestImages.PhotoNames.Select(TestImages.PathOf).ToArray();
            using var model = VisionModel.Load(file);
            Assert.Equal(preprocessing, model.Preprocessing with { Mean = preprocessing.Mean, Std = preprocessing.Std });
            Assert.Equal(labels, model.Labels);
            using var torchPredictor = model.CreatePredictor();
            var ours = torchPredictor.Predict(images, top: 2);
            using var ort = OnnxRuntimePredictor.FromFile(file, batchSize: 3);
            var theirs = ort.Predict(images, top: 2);
            using var fromModel = OnnxRuntimePredictor.FromModel(model, batchSize: 8);
            var again = fromModel.Predict(images, top: 2);
            Assert.Equal(images.Length, theirs.Count);
            for (int i = 0; i < images.Length; i++)
            {
                Assert.Equal(ours[i].Top.Select(c => c.Label), theirs[i].Top.Select(c => c.Label));
                Assert.Equal(ours[i].Top[0].Probability, theirs[i].Top[0].Probability, 4);
                Assert.Equal(theirs[i].Top.Select(c => c.Index), again[i].Top.Select(c => c.Index));
            }
            var features = ort.ExtractFeatures(images);
            Assert.Equal(new long[] { images.Length, 1280 }, features.shape);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Resnet18_cntk_loads_its_bundled_weights_through_the_registry()
    {
        using var scope = NewDisposeScope();
        using var model = VisionModel.Load("resnet18_cntk");
        Assert.Equal(0, model.Module.NumClasses);
        Assert.Equal(OnnxZoo.ResNet18CntkPreprocessing, model.Preprocessing);
        Assert.Contains(global::TransferSharp.Weights.WeightRegistry.For("resnet18_cntk"), t => t.Name == "resnet18_cntk.cntk_in1k");
        using var direct = OnnxZoo.CreateResNet18Cntk();
        var x = TestImages.Batch(["chelsea"]);
        using var _ = no_grad();
        model.Module.eval();
        var diffs = model.Module.state_dict().Where(kv => kv.Value.dtype == float32 && !kv.Value.equal(direct.state_dict()[kv.Key]).all().item<bool>()).Select(kv => kv.Key).ToList();
        Assert.True(diffs.Count == 0, string.Join(", ", diffs.Take(10)));
        Assert.True(model.Module.forward(x).allclose(direct.PooledFeatures(x), 1e-5, 1e-5));
    }

    [Theory]
    [InlineData("resnet18", 0)]
    [InlineData("resnet18", 3)]
    [InlineData("headless-vgg", 0)] // VGG's pattern: its output is fc7's ReLU, a vector no rule from its shape tells from scores
    public void A_foreign_file_is_judged_a_classifier_or_not_alike_by_both_engines(string architecture, int numClasses)
    {
        var dir = Paths.NewTempDir();
        try
        {
            // A file TransferSharp did not write: the export with its metadata (class count, labels) stripped.
            using var source = architecture == "headless-vgg" ? HeadlessVgg() : ModelZoo.Create(architecture, new ModelOptions { NumClasses = numClasses, ImageSize = 32 });
            source.eval();
            var proto = OnnxExporter.Build(source, new OnnxExportOptions());
            proto.MetadataProps.Clear();
            var file = Path.Combine(dir, "foreign.onnx");
            File.WriteAllBytes(file, Google.Protobuf.MessageExtensions.ToByteArray(proto));
            var images = new[] { TestImages.PathOf("chelsea") };

            using var model = VisionModel.Load(file);
            using var torchPredictor = model.CreatePredictor();
            using var ort = OnnxRuntimePredictor.FromFile(file);
            Assert.Equal(numClasses > 0, ort.HasClassifier);
            if (numClasses > 0)
            {
                Assert.Equal(3, torchPredictor.Predict(images, top: 3)[0].Top.Count);
                Assert.Equal(3, ort.Predict(images, top: 3)[0].Top.Count);
            }
            else
            {
                Assert.Contains("has no classifier", Assert.Throws<TransferSharpException>(() => torchPredictor.Predict(images)).Message);
                Assert.Contains("has no classifier", Assert.Throws<TransferSharpException>(() => ort.Predict(images)).Message);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>VGG without its last layer, small: convolutions, pooling, then fc6 and fc7 each with its ReLU.</summary>
    private static global::TransferSharp.Vision.Graph.GraphModule HeadlessVgg()
    {
        var b = new global::TransferSharp.Vision.Graph.GraphBuilder("headless_vgg", 3, 32, 32);
        var x = b.Relu(b.Conv(b.Input, "features.0", 8, new(3, 3), new(1, 1), 1, bias: true));
        b.Features(x);
        x = b.GlobalPool(x);
        x = b.Relu(b.Linear(x, "classifier.0", 16));
        x = b.Relu(b.Linear(x, "classifier.3", 16));
        return new global::TransferSharp.Vision.Graph.GraphModule(b.Build(x));
    }

    [Fact]
    public void A_classifier_that_ends_in_a_softmax_is_stated_and_its_logits_ranked_once()
    {
        var dir = Paths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            using var source = ModelZoo.Create("resnet18", new ModelOptions { NumClasses = 3, ImageSize = 32 });
            source.eval();
            var proto = OnnxExporter.Build(source, new OnnxExportOptions { Probabilities = true });
            proto.MetadataProps.Clear(); // as a file from another tool: Gemm, then Softmax
            var file = Path.Combine(dir, "softmax.onnx");
            File.WriteAllBytes(file, Google.Protobuf.MessageExtensions.ToByteArray(proto));

            using var model = VisionModel.Load(file);
            var graph = model.Module.Graph;
            Assert.Equal("fc", graph.ClassifierNode);
            Assert.NotEqual(graph.ClassifierNode, graph.Output);
            Assert.Equal(3, model.NumClasses);
            using var x = TestImages.Batch(["chelsea"]);
            using var predictor = model.CreatePredictor();
            using var probabilities = predictor.Forward(x); // the file's own output
            using var logits = predictor.Logits(x);
            Assert.True(logits.softmax(1).allclose(probabilities, 1e-5, 1e-6));
            var top = predictor.Predict([TestImages.PathOf("chelsea")], top: 3)[0].Top;
            Assert.Equal(1.0, top.Sum(c => c.Probability), 4);

            // A new head replaces the classifier and the softmax after it: the trained output is logits.
            var headed = graph.WithClassifier(5);
            Assert.Equal("fc", headed.Output);
            Assert.DoesNotContain(headed.Nodes, n => n.Op is global::TransferSharp.Vision.Graph.SoftmaxOp);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_file_whose_metadata_states_classes_its_output_does_not_score_is_refused()
    {
        var dir = Paths.NewTempDir();
        try
        {
            using var source = ModelZoo.Create("resnet18", new ModelOptions { NumClasses = 0, ImageSize = 32 });
            var proto = OnnxExporter.Build(source, new OnnxExportOptions());
            var stated = proto.MetadataProps.Single(p => p.Key == OnnxExporter.NumClassesKey);
            stated.Value = "7";
            var file = Path.Combine(dir, "lying.onnx");
            File.WriteAllBytes(file, Google.Protobuf.MessageExtensions.ToByteArray(proto));
            var e = Assert.Throws<OnnxException>(() => OnnxImporter.Import(file));
            Assert.Contains("lying.onnx", e.Message);
            Assert.Contains("states 7 classes", e.Message);
            // The features output of a file that states classes is features.
            using (var classifier = ModelZoo.Create("resnet18", new ModelOptions { NumClasses = 3, ImageSize = 32 }))
                OnnxExporter.Export(classifier, file);
            var imported = OnnxImporter.Import(file, new OnnxImportOptions { Output = OnnxExporter.FeaturesOutputName });
            Assert.Null(imported.Graph.ClassifierNode);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Resnet18_cntk_takes_other_input_sizes_with_its_mean_image_resampled()
    {
        using var scope = NewDisposeScope();
        using var model = VisionModel.Load("resnet18_cntk", options: new ModelOptions { ImageSize = 128 });
        Assert.Equal(new long[] { 1, 3, 128, 128 }, model.Module.Graph.InputShape);
        Assert.Equal(128, model.Preprocessing.CropSize);
        Assert.Equal(128, model.Preprocessing.ResizeSize); // it resizes to its crop, at any size
        var mean = model.Module.state_dict().Single(kv => kv.Value.dim() == 4 && kv.Value.shape[2] == 128).Value;
        using var full = OnnxZoo.CreateResNet18Cntk();
        var native = full.state_dict()[model.Module.state_dict().Single(kv => kv.Value.dim() == 4 && kv.Value.shape[2] == 128).Key];
        var expected = nn.functional.interpolate(native, size: [128, 128], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true);
        Assert.True(mean.allclose(expected));
        using var predictor = model.CreatePredictor();
        using var features = predictor.Features(ImageTransforms.LoadBatch([TestImages.PathOf("chelsea")], model.Preprocessing));
        Assert.Equal(new long[] { 1, 512 }, features.shape);
        Assert.Throws<InvalidOptionException>(() => VisionModel.Load("resnet18_cntk", options: new ModelOptions { ImageSize = 112 }));
    }
}
