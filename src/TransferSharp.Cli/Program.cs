using System.Runtime.InteropServices;
using Spectre.Console.Cli;
using TransferSharp.Cli;
using TransferSharp.Cli.Commands;
using TextCommands = TransferSharp.Cli.Commands.Text;
using VectorCommands = TransferSharp.Cli.Commands.Vectors;

// Before anything can load LibTorch: oneDNN's AVX-512 convolutions return NaN while another thread of the process is busy
// (the GC, an allocating thread: docs/reliability.md), so the command restricts oneDNN to AVX2 unless TRANSFERSHARP_AVX512=1.
TransferSharp.Runtime.TorchRuntime.AvoidAvx512KernelFault();
// Ctrl+C is taken over next, before anything slow loads: it cancels the command's token instead of killing the
// process, so work stops between steps and files being written are discarded (everything is written under a
// temporary name and renamed when complete). A second Ctrl+C ends the process at once.
using var cancellation = new CancellationTokenSource();
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
{
    context.Cancel = !cancellation.IsCancellationRequested;
    cancellation.Cancel();
});
// The command is the host: it opts in to the process-wide allocator tuning the library never applies by itself
// (TRANSFERSHARP_MALLOC_TUNING=0 leaves malloc alone), and takes --verbose anywhere on the line.
TransferSharp.Runtime.TorchRuntime.TuneAllocator();
// MKL (inside LibTorch, every float32 matrix product) picks its kernels by CPU vendor: on AMD it takes its generic AVX2
// path even with AVX-512 (2.5x below ONNX Runtime's MLAS on this project's EPYC, bench `gemm`). Its vendor check is
// answered "Intel" so it chooses by instruction set (TRANSFERSHARP_MKL_INTEL_PATH=0 leaves MKL's choice). It loads
// LibTorch (~0.4 s), which help and version never need.
if (args.Length > 0 && !args.Any(a => a is "-h" or "--help" or "-v" or "--version"))
    TransferSharp.Runtime.TorchRuntime.UseMklIntelCodePath();
args = ErrorReporter.TakeVerboseFlag(args);
// The composition root: the zoo gets resnet18_cntk (the offline default of `demo`) and the weight registry the offline
// all-MiniLM-L6-v2 (the default of `text embed`), each from its own package.
TransferSharp.Onnx.OnnxZoo.Register();
TransferSharp.Text.Transformers.MiniLmEncoder.Register();

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("transfer");
    config.SetApplicationVersion(typeof(TransferSharp.Vision.Zoo.ModelZoo).Assembly.GetName().Version?.ToString(3) ?? "0");
    config.SetExceptionHandler((ex, _) => ErrorReporter.Report(ex, args));
    config.UseStrictParsing();

    config.AddCommand<DoctorCommand>("doctor")
        .WithDescription("Show which LibTorch loaded, from where, with how many threads, whether the Debian 12 fix applied, and whether oneDNN runs AVX2 kernels (the default on AVX-512 CPUs, whose AVX-512 convolutions return NaN while another thread of the process is busy; TRANSFERSHARP_AVX512=1 keeps them).");
    config.AddCommand<ModelsCommand>("models")
        .WithDescription("List the model zoo (names, Keras aliases, sizes, parameter counts, pretrained weight tags) and the text encoders.")
        .WithExample("models")
        .WithExample("models", "--json")
        .WithExample("models", "--text");
    config.AddCommand<PredictCommand>("predict")
        .WithDescription("Classify images with a pretrained or trained model: top-k labels with probabilities. Checkpoints download on first use (TRANSFERSHARP_OFFLINE=1: never).")
        .WithExample("predict", "--model", "resnet50", "samples/cat.jpg")
        .WithExample("predict", "--model", "ResNet50", "--weights", "IMAGENET1K_V1", "--top", "3", "a.jpg", "b.png")
        .WithExample("predict", "--model", "resnet50", "--weights", "resnet50-0676ba61.pth", "photo.jpg", "--json")
        .WithExample("predict", "--model", "model.onnx", "--engine", "onnxruntime", "photo.jpg");
    config.AddCommand<ExportCommand>("export")
        .WithDescription("Write a model (zoo with weights, imported, or trained) as an ONNX file for ONNX Runtime / ML.NET: dynamic batch, preprocessing in its metadata.")
        .WithExample("export", "--model", "resnet18_cntk", "--out", "resnet18_cntk.onnx")
        .WithExample("export", "--model", "resnet50", "--weights", "IMAGENET1K_V2", "--out", "resnet50.onnx", "--opset", "13", "--check");
    config.AddCommand<SummaryCommand>("summary")
        .WithDescription("Show a model's layers, output shapes, parameter counts, MACs, feature node and layer groups.")
        .WithExample("summary", "--model", "resnet50")
        .WithExample("summary", "--model", "ResNet50", "--size", "320", "--json");
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train a classifier on a folder of labelled images: a new head on a pretrained body, then fine-tuning where the validation split says it helps (--mode auto, the default).")
        .WithExample("train", "--model", "resnet50", "--data", "photos/train", "--out", "model.safetensors")
        .WithExample("train", "--model", "resnet50", "--data", "photos/train", "--mode", "head", "--out", "model.safetensors")
        .WithExample("train", "--model", "resnet50", "--data", "photos/train", "--val", "photos/val", "--mode", "finetune", "--epochs", "9", "--unfreeze", "2", "--out", "model.safetensors");
    config.AddCommand<LrFindCommand>("lr-find")
        .WithDescription("Learning-rate range test (fastai's lr_find): an exponential ramp of the rate over ~100 mini-batches; prints the suggested rate (valley rule) and draws the curve.")
        .WithExample("lr-find", "--model", "resnet18_cntk", "--data", "photos/train", "--plot", "lr.png")
        .WithExample("lr-find", "--model", "resnet18_cntk", "--data", "photos/train", "--mode", "finetune", "--stage", "2", "--json");
    config.AddCommand<ExtractCommand>("extract")
        .WithDescription("Write pooled features of a model for every image of a data set (.parquet, .npy or .csv); resumable.")
        .WithExample("extract", "--model", "resnet50", "--data", "photos", "--out", "features.parquet");
    config.AddCommand<EvaluateCommand>("evaluate")
        .WithDescription("Accuracy, top-k, per-class precision/recall/F1 and the confusion matrix of a trained model.")
        .WithExample("evaluate", "--model", "model.safetensors", "--data", "photos/test", "--confusion-png", "confusion.png")
        .WithExample("evaluate", "--model", "model.safetensors", "--data", "photos/test", "--plots", "plots");
    config.AddCommand<ServeCommand>("serve")
        .WithDescription("Serve a model over HTTP (Kestrel): POST /v1/predict and /v1/features with dynamic batching, /v1/model, /healthz, /readyz, Prometheus /metrics, OpenAPI, and a page at / to try it.")
        .WithExample("serve", "--model", "transfer-demo/fashion.safetensors")
        .WithExample("serve", "--model", "resnet50", "--urls", "http://0.0.0.0:8080", "--max-batch", "32", "--max-delay-ms", "10")
        .WithExample("serve", "--model", "model.onnx", "--engine", "onnxruntime", "--max-upload-mb", "5");
    config.AddCommand<DemoCommand>("demo")
        .WithDescription("Offline tour on bundled Fashion-MNIST images: pretrained vs random features, fine-tuning, a saved model, predictions.")
        .WithExample("demo");
    config.AddBranch("vectors", vectors =>
    {
        vectors.SetDescription("Query, evaluate and convert pretrained word vectors: word2vec (binary/text), GloVe, fastText (.vec, and .bin/.ftz with subword vectors for unseen words).");
        vectors.AddCommand<VectorCommands.NeighborsCommand>("neighbors")
            .WithAlias("neighbours")
            .WithDescription("The nearest words by cosine similarity (gensim's most_similar); several words are answered with one matrix product.")
            .WithExample("vectors", "neighbors", "--vectors", "glove.6B.300d.txt", "computer")
            .WithExample("vectors", "neighbors", "--vectors", "cc.en.300.bin", "comptuer", "--top", "5")
            .WithExample("vectors", "neighbors", "--vectors", "GoogleNews-vectors-negative300.bin", "--limit", "500000", "king", "queen", "--json");
        vectors.AddCommand<VectorCommands.SimilarityCommand>("similarity")
            .WithDescription("Cosine similarity of word pairs.")
            .WithExample("vectors", "similarity", "--vectors", "w2v.bin", "computer", "computers", "love", "money");
        vectors.AddCommand<VectorCommands.AnalogyCommand>("analogy")
            .WithDescription("A is to B as C is to ? — the words nearest B − A + C (3CosAdd, or --cosmul), the question words excluded.")
            .WithExample("vectors", "analogy", "--vectors", "w2v.bin", "man", "king", "woman")
            .WithExample("vectors", "analogy", "--vectors", "w2v.bin", "man", "king", "woman", "--cosmul", "--top", "10");
        vectors.AddCommand<VectorCommands.EvaluateCommand>("evaluate")
            .WithDescription("Analogy accuracy (Google's questions-words format) and word-pair correlation (WordSim-353 style), as gensim reports them.")
            .WithExample("vectors", "evaluate", "--vectors", "w2v.bin", "--analogies", "questions-words.txt")
            .WithExample("vectors", "evaluate", "--vectors", "glove.txt", "--pairs", "wordsim353.tsv", "--json");
        vectors.AddCommand<VectorCommands.ConvertCommand>("convert")
            .WithDescription("Convert between word2vec binary/text, GloVe, fastText .vec and the TransferSharp cache (a fastText model is read, its word vectors written).")
            .WithExample("vectors", "convert", "--vectors", "glove.6B.300d.txt", "--out", "glove.6B.300d.bin")
            .WithExample("vectors", "convert", "--vectors", "cc.en.300.bin", "--limit", "200000", "--out", "cc.en.300.vec")
            .WithExample("vectors", "convert", "--vectors", "w2v.bin", "--out", "w2v.glove", "--to", "glove");
        vectors.AddCommand<VectorCommands.InfoCommand>("info")
            .WithDescription("What a vector file holds: format, words × dimension, header, duplicates, fastText arguments, load time.")
            .WithExample("vectors", "info", "--vectors", "ft.bin")
            .WithExample("vectors", "info", "--vectors", "glove.840B.300d.txt", "--cache", "--json");
    });
    config.AddBranch("text", text =>
    {
        text.SetDescription("Sentence embeddings from pretrained text encoders (all-MiniLM-L6-v2 offline, BGE, any BERT-family folder or ONNX file); text classifiers that start from pretrained word vectors (bag of embeddings, Kim CNN, BiLSTM) or a pretrained transformer encoder (MiniLM, BERT), and fastText classifiers.");
        text.AddCommand<TextCommands.EmbedCommand>("embed")
            .WithDescription("Sentence embeddings of texts from a pretrained text encoder (default all-MiniLM-L6-v2, offline): for 2-10 texts their cosine similarity matrix, --json the vectors, --out FILE JSON lines. Texts longer than the model's maximum are truncated with a warning; empty texts are refused.")
            .WithExample("text", "embed", "\"A man is playing a guitar.\"", "\"Someone plays an instrument.\"", "\"The stock market fell.\"")
            .WithExample("text", "embed", "--model", "bge-small-en-v1.5", "--file", "texts.txt", "--out", "embeddings.jsonl")
            .WithExample("text", "embed", "--model", "path/to/hf-model-folder", "--json", "\"How do I reset my password?\"");
        text.AddCommand<TextCommands.TrainCommand>("train")
            .WithDescription("Train a classifier on labelled texts (fastText __label__ format, CSV or TSV): with an embedding layer initialised from word vectors, or a head on a pretrained transformer encoder (fine-tuned with it, or fitted on its frozen embeddings with --mode head).")
            .WithExample("text", "train", "--model", "all-MiniLM-L6-v2", "--data", "train.csv", "--val", "val.csv", "--out", "minilm.safetensors")
            .WithExample("text", "train", "--model", "minilm/model.onnx", "--mode", "head", "--data", "train.csv", "--val", "val.csv", "--out", "head.safetensors")
            .WithExample("text", "train", "--vectors", "ft.bin", "--data", "fortunes.train.txt", "--model", "bow", "--out", "fortunes.safetensors")
            .WithExample("text", "train", "--vectors", "glove.6B.100d.txt", "--lowercase", "--data", "train.csv", "--val", "val.csv", "--model", "cnn", "--freeze", "--out", "cnn.safetensors")
            .WithExample("text", "train", "--data", "train.tsv", "--model", "bilstm", "--embedding-dim", "64", "--epochs", "5", "--out", "lstm.safetensors")
            .WithExample("text", "train", "--vectors", "ft.bin", "--data", "train.csv", "--val", "val.csv", "--epochs", "30", "--schedule", "cosine", "--warmup", "1", "--patience", "5", "--out", "text.safetensors")
            .WithExample("text", "train", "--vectors", "ft.bin", "--data", "train.csv", "--val", "val.csv", "--epochs", "30", "--schedule", "cosine", "--warmup", "1", "--patience", "5", "--out", "text.safetensors", "--resume");
        text.AddCommand<TextCommands.PredictCommand>("predict")
            .WithDescription("Most probable labels of texts, from a trained classifier or a fastText .bin/.ftz; texts from the arguments, --input FILE or standard input (one per line, printed as fasttext predict-prob prints them).")
            .WithExample("text", "predict", "--model", "fortunes.safetensors", "The computer is down again.")
            .WithExample("text", "predict", "--model", "sup.ftz", "--top", "3", "<", "texts.txt")
            .WithExample("text", "predict", "--model", "fortunes.safetensors", "--input", "texts.txt", "--json");
        text.AddCommand<TextCommands.EvaluateCommand>("evaluate")
            .WithDescription("Accuracy, per-label precision/recall/F1 (and fastText's P@1/R@1 for fastText models) on labelled data.")
            .WithExample("text", "evaluate", "--model", "fortunes.safetensors", "--data", "fortunes.test.txt")
            .WithExample("text", "evaluate", "--model", "sup.bin", "--data", "fortunes.test.txt", "--json");
    });
});
if (cancellation.IsCancellationRequested) return ErrorReporter.Report(new OperationCanceledException(cancellation.Token), args);
return await app.RunAsync(args, cancellation.Token);
