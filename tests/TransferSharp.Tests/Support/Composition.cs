using System.Runtime.CompilerServices;

namespace TransferSharp.Tests.Support;

/// <summary>The test host's composition root: the zoo gets resnet18_cntk from its own package, as the CLI does.</summary>
internal static class Composition
{
#pragma warning disable CA2255 // the test assembly is a host: it composes the library once, before any test runs
    [ModuleInitializer]
    internal static void Compose() => global::TransferSharp.Onnx.OnnxZoo.Register();
#pragma warning restore CA2255
}
