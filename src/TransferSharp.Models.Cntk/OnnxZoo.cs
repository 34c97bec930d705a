using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Zoo;
using TransferSharp.Weights;

namespace TransferSharp.Onnx;

/// <summary>
/// Zoo entries backed by ONNX files that install offline with TransferSharp. <c>resnet18_cntk</c> is
/// the ImageNet-trained CNTK ResNet-18 that NuGet's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
/// ships (<c>ResNet18.onnx</c>, 512-d pool5 features, no classifier), preceded by that package's
/// <c>ResNetPreprocess.onnx</c> (RGB→BGR, subtraction of a 224×224 mean image), imported into the graph
/// so that the model takes RGB pixels in 0–255 (see <see cref="ResNet18CntkPreprocessing"/>).
/// </summary>
public static class OnnxZoo
{
    /// <summary>Zoo name of the CNTK ResNet-18.</summary>
    public const string ResNet18CntkName = "resnet18_cntk";

    /// <summary>Node-name prefix of the imported preprocessing graph.</summary>
    public const string PreprocessPrefix = "preprocess";

    private const string PackageName = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    // PublicationOnly: a failure (files missing) is not cached, so a later call can succeed.
    private static readonly Lazy<OnnxModel> _resnet18 = new(ImportResNet18Cntk, LazyThreadSafetyMode.PublicationOnly);

    /// <summary>Eval transform of <c>resnet18_cntk</c>: the shorter side resized to 224, a 224 center crop,
    /// pixels kept in 0–255 in RGB order. Channel swap and mean-image subtraction happen inside the graph
    /// (its <c>preprocess.*</c> nodes), exactly as ResNetPreprocess.onnx does them.</summary>
    public static Vision.Preprocessing.Preprocessing ResNet18CntkPreprocessing { get; } = new()
    {
        ResizeSize = 224,
        CropSize = 224,
        PixelScale = 255,
        Mean = [0.0, 0.0, 0.0],
        Std = [1.0, 1.0, 1.0],
    };

    /// <summary>Tag of the bundled CNTK weights ("resnet18_cntk.cntk_in1k").</summary>
    public const string ResNet18CntkTag = "cntk_in1k";

    private static readonly ZooEntry _entry = new(ResNet18CntkName, "ResNet", "CNTK (ML.NET DnnImageFeaturizer)", "ResNet18.onnx", [], 224, BuildResNet18Cntk);

    /// <summary>
    /// Adds <c>resnet18_cntk</c> to the zoo and its bundled weights to the weight registry (as its default). The host
    /// calls it once at start-up — the <c>transfer</c> CLI and TransferSharp.ML do — so the core package neither
    /// carries the model nor registers anything by itself. Calling it again does nothing.
    /// </summary>
    public static void Register()
    {
        ModelZoo.Register(_entry);
        WeightRegistry.Register(ResNet18CntkWeights, makeDefault: true);
    }

    /// <summary>The bundled weights as a registry tag: a local file (the ONNX initializers, written once
    /// as <c>bundled/resnet18_cntk.cntk_in1k.safetensors</c> in the weight cache), the CNTK
    /// preprocessing, no classifier (features only).</summary>
    public static WeightTag ResNet18CntkWeights => _weights.Value;

    private static readonly Lazy<WeightTag> _weights = new(() => new WeightTag
    {
        Architecture = ResNet18CntkName,
        Tag = ResNet18CntkTag,
        Source = WeightSource.Local,
        SourceArchitecture = "ResNet18.onnx (Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1)",
        LocalFile = BundledCheckpoint,
        Preprocessing = ResNet18CntkPreprocessing,
        NumClasses = 0,
        FeaturesOnly = true,
        License = "mit",
        Recipe = "CNTK ResNet-18 trained on ImageNet-1k, shipped by ML.NET's DnnImageFeaturizer; 512-d pool5 features",
    });

    private static readonly object _bundleLock = new();

    /// <summary>The bundled weights as a safetensors checkpoint in the weight cache (written on first use,
    /// rewritten when the ONNX file is newer).</summary>
    public static string BundledCheckpoint()
    {
        var onnx = ResNet18OnnxPath;
        var path = Path.Combine(WeightCache.FromEnvironment().Root, "bundled", $"{ResNet18CntkName}.{ResNet18CntkTag}.safetensors");
        lock (_bundleLock)
        {
            if (File.Exists(path) && File.GetLastWriteTimeUtc(path) >= File.GetLastWriteTimeUtc(onnx)) return path;
            using var scope = TorchSharp.torch.NewDisposeScope();
            var tensors = ResNet18Cntk.State.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, TorchSharp.torch.tensor(kv.Value.AsFloats()).reshape(kv.Value.Shape)));
            SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["source"] = onnx, ["format"] = "pt" });
        }
        return path;
    }

    /// <summary>Folders searched for the DnnImageModels files: beside the application and beside this
    /// assembly ($TRANSFERSHARP_DNN_MODELS first when set).</summary>
    public static IReadOnlyList<string> SearchFolders
    {
        get
        {
            var list = new List<string>();
            if (Environment.GetEnvironmentVariable("TRANSFERSHARP_DNN_MODELS") is { Length: > 0 } env) list.Add(env);
            list.Add(Path.Combine(AppContext.BaseDirectory, "DnnImageModels"));
            if (Path.GetDirectoryName(typeof(OnnxZoo).Assembly.Location) is { Length: > 0 } asm) list.Add(Path.Combine(asm, "DnnImageModels"));
            return list.Distinct().ToArray();
        }
    }

    /// <summary>Path of ResNet18.onnx.</summary>
    public static string ResNet18OnnxPath => Find(Path.Combine("ResNet18Onnx", "ResNet18.onnx"));

    /// <summary>Path of ResNetPreprocess.onnx.</summary>
    public static string ResNetPreprocessOnnxPath => Find(Path.Combine("ResNetPrepOnnx", "ResNetPreprocess.onnx"));

    private static string Find(string relative)
    {
        foreach (var dir in SearchFolders)
        {
            var p = Path.Combine(dir, relative);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException(
            $"{Path.GetFileName(relative)} was not found (looked in {string.Join(", ", SearchFolders.Select(d => Path.Combine(d, relative)))}). "
            + $"It comes with the NuGet package {PackageName}, which TransferSharp references: build the application so the package's "
            + "DnnImageModels folder is copied beside it, or set TRANSFERSHARP_DNN_MODELS to a folder holding ResNet18Onnx/ and ResNetPrepOnnx/.",
            Path.GetFileName(relative));
    }

    /// <summary>Imports the preprocessing graph and ResNet18.onnx as one model (RGB 0–255 in, the 7×7×512
    /// feature map's 1×1 average out; feature node = the last ReLU).</summary>
    public static OnnxModel ImportResNet18Cntk()
    {
        var pre = OnnxImporter.Import(ResNetPreprocessOnnxPath, new OnnxImportOptions { Name = PreprocessPrefix });
        var net = OnnxImporter.Import(ResNet18OnnxPath, new OnnxImportOptions { Name = ResNet18CntkName });
        return OnnxModelChain.Chain(pre, PreprocessPrefix, net, ResNet18CntkName);
    }

    /// <summary>The imported model, parsed once per process.</summary>
    public static OnnxModel ResNet18Cntk => _resnet18.Value;

    private static ModelGraph BuildResNet18Cntk(ModelOptions o)
    {
        if (o.InChannels != 3) throw new InvalidOptionException(nameof(o.InChannels), $"{ResNet18CntkName} takes 3-channel images (its mean image is RGB)");
        // The file ends in a 7×7 average pool; the graph's output is the pooled [N, 512] features (global_pool), and
        // a requested classifier is a new linear layer "fc" on them.
        var graph = ResNet18Cntk.Graph;
        graph = graph.CutAt(graph.FeatureNode!);
        if (o.ImageSize is { } s && s != NativeSize)
        {
            // Another input size: the mean image becomes a constant of that size (the weight loader resamples the 224×224
            // one into it), the rest of the network is convolutions and the global pool.
            // Its stride-2 branches meet in additions: only multiples of 32 keep both sides the same size at every stage.
            if (s < 32 || s % 32 != 0) throw new InvalidOptionException(nameof(o.ImageSize), $"{ResNet18CntkName} takes inputs whose size is a multiple of 32 (64, 96, 128, …, 224); got {s}");
            var nodes = graph.Nodes.Select(n => n.Op is ConstantOp { Shape: [1, 3, NativeSize, NativeSize] } ? n with { Op = new ConstantOp([1, 3, s, s]) } : n).ToArray();
            graph = graph.With(nodes: nodes, inputShape: [graph.InputShape[0], graph.InputShape[1], s, s]);
        }
        return graph.WithClassifier(o.NumClasses, new HeadSpec { Dropout = o.DropRate });
    }

    /// <summary>Loads the pretrained body of <c>resnet18_cntk</c> into a module built from its zoo entry
    /// (a classifier, when present, keeps its fresh initialisation).</summary>
    public static void LoadResNet18CntkWeights(GraphModule module)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var state = ResNet18Cntk.State.ToDictionary(kv => kv.Key, kv => TorchSharp.torch.tensor(kv.Value.AsFloats()).reshape(kv.Value.Shape), StringComparer.Ordinal);
        // Through the zoo's loader, as a checkpoint of the tag: a new head stays initialised, the mean image fits the input size.
        StateDictLoader.Load(module, state, LoadPolicy.Strict, ResNet18OnnxPath);
    }

    private const int NativeSize = 224;

    /// <summary>The zoo model with its pretrained weights, in eval mode.</summary>
    public static GraphModule CreateResNet18Cntk(ModelOptions? options = null)
    {
        var module = ModelZoo.Create(ResNet18CntkName, options ?? new ModelOptions { NumClasses = 0 });
        try
        {
            LoadResNet18CntkWeights(module);
        }
        catch
        {
            module.Dispose();
            throw;
        }
        module.eval();
        return module;
    }
}
