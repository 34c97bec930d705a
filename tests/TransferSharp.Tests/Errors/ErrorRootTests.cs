using TransferSharp.Cli;
using TransferSharp.Tests.Support;
using Xunit;

namespace TransferSharp.Tests.Errors;

/// <summary>One error root: every exception type the library defines derives from TransferSharpException,
/// file problems carry the path under one name, and the CLI tells user errors from internal ones.</summary>
[Collection("Console")]
public sealed class ErrorRootTests
{
    [Fact]
    public void EveryLibraryExceptionDerivesFromTheRoot() // cancellation is no error: its types stay OperationCanceledException
    {
        var exceptions = typeof(TransferSharpException).Assembly.GetTypes()
            .Where(t => t.IsPublic && typeof(Exception).IsAssignableFrom(t) && !typeof(OperationCanceledException).IsAssignableFrom(t)).ToList();
        Assert.True(exceptions.Count >= 15, $"only {exceptions.Count} public exception types found");
        var strays = exceptions.Where(t => !typeof(TransferSharpException).IsAssignableFrom(t)).Select(t => t.FullName).ToList();
        Assert.True(strays.Count == 0, "not under TransferSharpException: " + string.Join(", ", strays));
        // Every file problem is an InvalidFileException: one property for the path, one for the reason.
        foreach (var t in new[] { typeof(global::TransferSharp.Weights.CheckpointFormatException), typeof(global::TransferSharp.Onnx.OnnxException), typeof(global::TransferSharp.Text.WordVectorsFormatException),
                     typeof(global::TransferSharp.Vision.Preprocessing.ImageDecodeException), typeof(global::TransferSharp.Training.ModelFileException),
                     typeof(global::TransferSharp.Vision.Graph.StateDictMismatchException) })
            Assert.True(typeof(InvalidFileException).IsAssignableFrom(t), t.Name);
    }

    [Fact]
    public void AnInvalidOptionIsReportedWithItsFlag()
    {
        var err = Capture(() => ErrorReporter.Report(new InvalidOptionException("Epochs", "Epochs must be at least 1 (got 0)"), []), out int code);
        Assert.Equal(ErrorReporter.UserError, code);
        Assert.Contains("--epochs: Epochs (--epochs) must be at least 1", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void AForeignExceptionIsAnInternalErrorWithItsStackUnderVerbose()
    {
        static Exception Thrown()
        {
            try { throw new InvalidOperationException("slot freed early"); }
            catch (Exception e) { return e; }
        }
        ErrorReporter.Verbose = false;
        var quiet = Capture(() => ErrorReporter.Report(Thrown(), []), out int code);
        Assert.Equal(ErrorReporter.InternalError, code);
        Assert.Contains("internal error (InvalidOperationException)", quiet);
        Assert.Contains("--verbose", quiet);
        Assert.DoesNotContain("   at ", quiet);
        try
        {
            ErrorReporter.Verbose = true;
            var verbose = Capture(() => ErrorReporter.Report(Thrown(), []), out _);
            Assert.Contains("   at ", verbose);
        }
        finally
        {
            ErrorReporter.Verbose = false;
        }
    }

    [Fact]
    public void TheCliMapsABadOptionValueToAUserError()
    {
        var (code, _, err) = CliRunner.Run("train", "--model", "resnet18", "--weights", "none", "--data", Path.Combine(Paths.RepoRoot, "data", "fashion-mnist-subset", "train"),
            "--epochs", "0", "--out", Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.safetensors"));
        Assert.Equal(ErrorReporter.UserError, code);
        Assert.Contains("--epochs", err);
        Assert.DoesNotContain("internal error", err);
    }

    private static string Capture(Func<int> report, out int code)
    {
        var old = Console.Error;
        var writer = new StringWriter();
        Console.SetError(writer);
        try
        {
            code = report();
        }
        finally
        {
            Console.SetError(old);
        }
        return writer.ToString();
    }
}
