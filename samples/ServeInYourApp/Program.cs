// An ASP.NET Core app of your own that also serves a TransferSharp model: two calls add the endpoints.
using TransferSharp.Runtime;
using TransferSharp.Serving;

// First, before anything loads LibTorch: on Linux x64 with AVX-512, oneDNN's AVX-512 convolutions return NaN while
// another thread of the process is busy beside them, as a server's are; this restricts oneDNN to AVX2 (docs/reliability.md).
TorchRuntime.AvoidAvx512KernelFault();
// On a CPU that is not Intel's, MKL's matrix products take its generic AVX2 path unless asked to choose by instruction
// set (2.5x faster on an AVX-512 AMD EPYC); a no-op on Intel.
TorchRuntime.UseMklIntelCodePath();

var builder = WebApplication.CreateBuilder(args);
TransferSharp.Onnx.OnnxZoo.Register(); // models trained on resnet18_cntk (the demo's) rebuild by name

// Any model `transfer predict` accepts: a trained model file, a zoo name, an .onnx file (with engine: "onnxruntime").
var model = ServedModel.Load(builder.Configuration["Model"] ?? "transfer-demo/fashion.safetensors");
builder.Services.AddTransferSharp(model, new ServingOptions { MaxBatch = 16, MaxDelay = TimeSpan.FromMilliseconds(5) });
builder.Services.AddOpenApi();

var app = builder.Build();
app.MapGet("/", () => Results.Redirect("/ml/"));
app.MapGet("/hello", () => "your own endpoints stay as they were");
app.MapOpenApi();              // /openapi/v1.json documents yours and the model's
app.MapTransferSharp("/ml");   // the page at /ml/, POST /ml/v1/predict, /ml/v1/features, /ml/v1/model, /ml/healthz, /ml/readyz, /ml/metrics
app.Run();
