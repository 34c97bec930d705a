using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;
using TransferSharp.IO;
using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.ML;

/// <summary>A TransferSharp graph as an ML.NET step: preprocessing (<see cref="ImageColumns"/>), then the graph
/// exported to ONNX and run by ML.NET's ONNX transformer, whose saved model holds the ONNX bytes — so
/// <c>mlContext.Model.Save</c> writes everything a fresh process needs to predict identically.</summary>
internal sealed class OnnxStep
{
    private readonly byte[] _onnx;
    private readonly Dictionary<string, int[]> _inputShape;

    /// <summary>Exports <paramref name="module"/>; <paramref name="probabilities"/> ends a classifier in a softmax.</summary>
    public OnnxStep(GraphModule module, Preprocessing preprocessing, bool probabilities)
    {
        Preprocessing = preprocessing;
        var options = new OnnxExportOptions { InputName = ImageColumns.Pixels, Probabilities = probabilities, Preprocessing = preprocessing };
        _onnx = OnnxExporter.ExportToBytes(module, options);
        var graph = module.Graph;
        MainOutput = OnnxExporter.MainOutputName(graph, options);
        FeaturesOutput = graph.FeatureNode is not null ? OnnxExporter.FeaturesOutputName : MainOutput;
        FeatureCount = graph.NumFeatures;
        // The pixels column is a vector of unknown length to ML.NET (a registered mapping cannot declare one per
        // model); ML.NET then needs exactly one free dimension to infer, so the channels are left free.
        _inputShape = new Dictionary<string, int[]> { [ImageColumns.Pixels] = [1, -1, preprocessing.CropSize, preprocessing.CropSize] };
    }

    public Preprocessing Preprocessing { get; }

    /// <summary>The ONNX output holding the pooled features.</summary>
    public string FeaturesOutput { get; }

    /// <summary>The ONNX output holding the class scores (or the features, for a headless graph).</summary>
    public string MainOutput { get; }

    public int FeatureCount { get; }

    /// <summary>
    /// Fits image column → preprocessing → ONNX output <paramref name="onnxOutput"/> copied to
    /// <paramref name="outputColumn"/> (temporary columns dropped) → <paramref name="tail"/>. The ONNX model is a
    /// file of ours that the result deletes when disposed: ML.NET's <c>ApplyOnnxModel</c> copies a model given as a
    /// stream into the temp folder and never deletes that copy (it does not own it), while a model file it is given
    /// it neither copies nor deletes.
    /// </summary>
    public ITransformer Fit(TransformsCatalog transforms, IDataView input, string inputColumn, string onnxOutput, string outputColumn,
        IEstimator<ITransformer>? tail = null)
    {
        var inputType = input.Schema[inputColumn].Type;
        var file = OnnxStepTransformer.NewModelFile(Path.GetTempPath());
        AtomicFile.Write(file, fs => fs.Write(_onnx));
        try
        {
            var steps = new List<IEstimator<ITransformer>>(ImageColumns.Preprocess(transforms, inputColumn, inputType, Preprocessing))
            {
                transforms.ApplyOnnxModel(new OnnxOptions
                {
                    ModelFile = file, InputColumns = [ImageColumns.Pixels], OutputColumns = [onnxOutput], ShapeDictionary = _inputShape, RecursionLimit = 100,
                }),
            };
            if (onnxOutput != outputColumn) steps.Add(transforms.CopyColumns(outputColumn, onnxOutput));
            steps.Add(transforms.DropColumns([.. TemporaryColumns(inputType, onnxOutput, outputColumn)]));
            if (tail is not null) steps.Add(tail);
            var fitted = new List<ITransformer>();
            var view = input;
            foreach (var step in steps)
            {
                fitted.Add(step.Fit(view));
                view = fitted[^1].Transform(view);
            }
            return new OnnxStepTransformer(new TransformerChain<ITransformer>([.. fitted]), file);
        }
        catch
        {
            OnnxStepTransformer.TryDelete(file);
            throw;
        }
    }

    /// <summary>The schema <see cref="Fit"/>'s result makes (before any tail): the input plus <paramref name="outputColumn"/>
    /// of <paramref name="outputType"/>. It checks the image column as Fit does but opens no ONNX session, since ML.NET
    /// asks for it before every Fit.</summary>
    public SchemaShape OutputSchema(TransformsCatalog transforms, SchemaShape input, string inputColumn, string outputColumn, DataViewType outputType)
    {
        var inputType = ImageColumns.TypeOf(input, inputColumn);
        var preprocess = ImageColumns.Preprocess(transforms, inputColumn, inputType, Preprocessing);
        var checkedShape = input;
        if (inputType is not ImageDataViewType) // see ImageColumns.Preprocess
            foreach (var step in preprocess) checkedShape = step.GetOutputSchema(checkedShape);
        // A schema shape is built only by ML.NET itself or by an estimator: a mapping that declares the column is one.
        var added = SchemaDefinition.Create(typeof(PixelsRow));
        added[0].ColumnName = outputColumn;
        added[0].ColumnType = outputType;
        return transforms.CustomMapping<NoColumns, PixelsRow>((_, _) => { }, contractName: null, outputSchemaDefinition: added).GetOutputSchema(input);
    }

    /// <summary>A mapping input that reads no column.</summary>
    private sealed class NoColumns;

    private static List<string> TemporaryColumns(DataViewType inputType, string onnxOutput, string outputColumn)
    {
        var temporary = ImageColumns.Temporary.Where(c => c != ImageColumns.ByteCount || inputType is not TextDataViewType).ToList();
        if (onnxOutput != outputColumn) temporary.Add(onnxOutput);
        return temporary;
    }
}

/// <summary>
/// A fitted <see cref="OnnxStep"/>: ML.NET's own chain of steps, and the ONNX file its <c>ApplyOnnxModel</c> step reads
/// (which it also reads again to save the model). Saving writes the chain alone, so a saved model is made of ML.NET's
/// steps and the registered mappings only; disposing disposes the chain and deletes the file. A model loaded from a
/// saved file is ML.NET's chain itself: its <c>ApplyOnnxModel</c> step keeps its own temporary copy of the ONNX model and
/// deletes it when disposed.
/// </summary>
internal sealed class OnnxStepTransformer : ITransformer, IDisposable
{
    private readonly ITransformer _chain;
    private readonly string _file;
    private bool _disposed;

    public OnnxStepTransformer(ITransformer chain, string file)
    {
        (_chain, _file) = (chain, file);
        Live.TryAdd(file, 0);
    }

    // Files of this process's transformers that are still alive. Programs rarely dispose an ML.NET model before they
    // exit, and finalizers do not run at exit: the files left then are deleted when the process ends normally, and a
    // killed process's files by the next Fit of any process (SweepStale).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Live = new(StringComparer.Ordinal);

    static OnnxStepTransformer() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var file in Live.Keys) TryDelete(file);
    };

    /// <summary>A new name for a model file of this process in <paramref name="dir"/>
    /// (<c>transfersharp-PID-GUID.onnx</c>), after sweeping the files of processes that are gone.</summary>
    internal static string NewModelFile(string dir)
    {
        SweepStale(dir);
        return Path.Combine(dir, $"transfersharp-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
    }

    /// <summary>Deletes model files of our naming whose process is no longer running; returns how many. Only exact
    /// <c>transfersharp-PID-GUID.onnx</c> names are touched, and never one of a live process.</summary>
    internal static int SweepStale(string dir) =>
        AtomicFile.SweepStale(dir, "transfersharp-*.onnx", new System.Text.RegularExpressions.Regex("^transfersharp-(?<pid>[0-9]{1,10})-[0-9a-f]{32}\\.onnx$"));

    /// <summary>Disposal was forgotten: the chain is unreachable, so nothing can save it any more.</summary>
    ~OnnxStepTransformer()
    {
        TryDelete(_file);
        Live.TryRemove(_file, out _);
    }

    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);

    public IDataView Transform(IDataView input) => _chain.Transform(input);

    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        (_chain as IDisposable)?.Dispose();
        TryDelete(_file);
        Live.TryRemove(_file, out _);
        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes a file of ours if it can (on Windows a file still open elsewhere stays).</summary>
    internal static void TryDelete(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
