using System.Globalization;
using Google.Protobuf;
using TransferSharp.Onnx;
using TransferSharp.Vision.Graph;
using static TorchSharp.torch;
using OnnxProto = global::Onnx;

namespace TransferSharp.Bench;

/// <summary>
/// ONNX's own backend node tests as a conformance suite for the importer: every test under the data directory (Debian's
/// libonnx-testdata) whose operators <see cref="OnnxImporter.SupportedOperators"/> claims is imported, run in TorchSharp and
/// compared with the stored outputs. A test ends as pass, refused (a typed <see cref="OnnxException"/> at import: the
/// message names the op and the node) or wrong (a value, a shape or a crash that is not a typed refusal). The importer
/// takes one runtime input, so the runner feeds the test's first floating-point input and turns the others into
/// initializers holding the test's values (how weights reach the importer in real files); each graph output is imported
/// and compared on its own.
/// </summary>
public static class OnnxConformance
{
    public const string Help = "ONNX backend node tests (libonnx-testdata) through the importer, pass/refused/wrong per op: [--data DIR] [--filter TEXT] [--verbose] [--markdown]";

    private const string DefaultData = "/usr/share/libonnx-testdata/data/node";

    // numpy.testing.assert_allclose as ONNX's backend runner calls it (rtol 1e-3), with an absolute floor for float32
    // results LibTorch computes in another order than numpy's float64 reference.
    private const double Rtol = 1e-3, Atol = 1e-5;

    private enum Outcome { Pass, Refused, Wrong }

    private sealed record Result(string Test, string Ops, Outcome Outcome, string Detail);

    public static int Run(string[] args)
    {
        string data = DefaultData;
        string? filter = null;
        bool verbose = false, markdown = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--data": data = args[++i]; break;
                case "--filter": filter = args[++i]; break;
                case "--verbose": verbose = true; break;
                case "--markdown": markdown = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (!Directory.Exists(data))
        {
            Console.Error.WriteLine($"no node tests at {data}: install Debian's libonnx-testdata (apt-get install libonnx-testdata) or pass --data DIR");
            return 2;
        }
        set_num_threads(1);
        var results = new List<Result>();
        int unclaimed = 0;
        foreach (var dir in Directory.GetDirectories(data).Order(StringComparer.Ordinal))
        {
            var test = Path.GetFileName(dir);
            if (filter is not null && !test.Contains(filter, StringComparison.Ordinal)) continue;
            var modelPath = Path.Combine(dir, "model.onnx");
            if (!File.Exists(modelPath)) continue;
            OnnxProto.ModelProto model;
            try
            {
                model = OnnxProto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
            }
            catch (InvalidProtocolBufferException)
            {
                unclaimed++;
                continue;
            }
            var nodes = model.Graph.Node;
            if (nodes.Count == 0 || nodes.Any(n => n.Domain is not ("" or "ai.onnx") || !OnnxImporter.SupportedOperators.Contains(n.OpType)))
            {
                unclaimed++;
                continue;
            }
            var ops = string.Join("+", nodes.Select(n => n.OpType).Distinct().Order(StringComparer.Ordinal));
            var result = RunTest(modelPath, dir, model);
            results.Add(new Result(test, ops, result.Outcome, result.Detail));
            if (verbose || result.Outcome == Outcome.Wrong)
                Console.Error.WriteLine($"{result.Outcome,-8} {test}: {result.Detail}");
        }
        Report(results, unclaimed, data, markdown);
        return results.Any(r => r.Outcome == Outcome.Wrong) ? 1 : 0;
    }

    private static (Outcome Outcome, string Detail) RunTest(string modelPath, string dir, OnnxProto.ModelProto model)
    {
        var sets = Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal).ToArray();
        if (sets.Length == 0) return (Outcome.Refused, "no test data");
        var worst = (Outcome: Outcome.Pass, Detail: "");
        foreach (var set in sets)
        {
            var r = RunSet(modelPath, set, model);
            if (r.Outcome > worst.Outcome) worst = r;
        }
        return worst;
    }

    private static (Outcome Outcome, string Detail) RunSet(string modelPath, string set, OnnxProto.ModelProto original)
    {
        var model = original.Clone();
        var graph = model.Graph;
        var initialized = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var fed = graph.Input.Where(i => !initialized.Contains(i.Name)).ToList();
        if (fed.FirstOrDefault(i => i.Type?.TensorType is null) is { } other)
            return (Outcome.Refused, $"input '{other.Name}' is not a tensor ({other.Type?.ValueCase.ToString() ?? "untyped"})");
        var inputs = new List<OnnxProto.TensorProto>();
        for (int k = 0; k < fed.Count; k++)
        {
            var file = Path.Combine(set, $"input_{k}.pb");
            if (!File.Exists(file)) return (Outcome.Refused, $"test data lacks {Path.GetFileName(file)} (a sequence or optional input)");
            inputs.Add(AsDeclared(OnnxProto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(file)), fed[k]));
        }
        int runtime = fed.FindIndex(i => i.Type?.TensorType is { } t && OnnxTensors.IsFloating(t.ElemType));
        if (runtime < 0) runtime = 0; // no floating input: the importer's own refusal says so
        for (int k = 0; k < fed.Count; k++)
        {
            if (k == runtime) continue;
            var t = inputs[k].Clone();
            t.Name = fed[k].Name;
            graph.Initializer.Add(t);
            graph.Input.Remove(fed[k]);
        }
        ConstTensor? x = null;
        if (fed.Count > 0)
        {
            try
            {
                x = OnnxTensors.Decode(modelPath, Path.GetDirectoryName(modelPath)!, inputs[runtime], "test input");
            }
            catch (OnnxException e)
            {
                return (Outcome.Refused, e.Message);
            }
        }
        for (int j = 0; j < graph.Output.Count; j++)
        {
            var outputName = graph.Output[j].Name;
            var expectedFile = Path.Combine(set, $"output_{j}.pb");
            if (!File.Exists(expectedFile)) return (Outcome.Refused, $"test data lacks output_{j}.pb");
            var expectedProto = AsDeclared(OnnxProto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(expectedFile)), graph.Output[j]);
            OnnxModel imported;
            try
            {
                imported = OnnxImporter.Import(modelPath, model, new OnnxImportOptions { Output = outputName });
            }
            catch (OnnxException e)
            {
                return (Outcome.Refused, OneLine(e.Message));
            }
            catch (Exception e)
            {
                return (Outcome.Wrong, $"import crashed: {e.GetType().Name}: {OneLine(e.Message)}");
            }
            if (x is null) return (Outcome.Refused, "no input");
            try
            {
                using var scope = NewDisposeScope();
                using var module = imported.CreateModule();
                using var input = tensor(x.AsFloats()).reshape(x.Shape);
                using var _ = no_grad();
                var y = module.forward(input);
                ConstTensor expected;
                try
                {
                    expected = OnnxTensors.Decode(modelPath, Path.GetDirectoryName(modelPath)!, expectedProto, "expected output");
                }
                catch (OnnxException e)
                {
                    return (Outcome.Refused, "expected output: " + OneLine(e.Message));
                }
                var got = y.shape;
                if (!got.SequenceEqual(expected.Shape))
                    return (Outcome.Wrong, $"output '{outputName}': shape [{string.Join(",", got)}], expected [{string.Join(",", expected.Shape)}]");
                if (expected.Count == 0) continue;
                var values = y.contiguous().to_type(ScalarType.Float32).data<float>().ToArray();
                var want = expected.AsFloats();
                for (int i = 0; i < want.Length; i++)
                {
                    double a = values[i], e = want[i];
                    bool same = a == e || (double.IsNaN(a) && double.IsNaN(e)) || Math.Abs(a - e) <= Atol + Rtol * Math.Abs(e);
                    if (!same)
                        return (Outcome.Wrong, string.Create(CultureInfo.InvariantCulture, $"output '{outputName}'[{i}] = {a:G6}, expected {e:G6}"));
                }
            }
            catch (TransferSharpException e)
            {
                return (Outcome.Wrong, $"imported but does not run: {OneLine(e.Message)}");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return (Outcome.Wrong, $"run crashed: {e.GetType().Name}: {OneLine(e.Message)}");
            }
        }
        return (Outcome.Pass, "");
    }

    /// <summary>A refusal's message without the file path and the quoted names that differ from test to test.</summary>
    private static string Reason(string detail)
    {
        int colon = detail.IndexOf(".onnx: ", StringComparison.Ordinal);
        var reason = colon >= 0 ? detail[(colon + ".onnx: ".Length)..] : detail;
        reason = System.Text.RegularExpressions.Regex.Replace(reason, "'[^']*'", "'…'");
        return System.Text.RegularExpressions.Regex.Replace(reason, @"^1 node\(s\) cannot be imported: +", "");
    }

    /// <summary>ONNX's test generator stores bfloat16 tensors as uint16 arrays of their bit patterns (numpy has no
    /// bfloat16); such a tensor is read as the bfloat16 its graph declares.</summary>
    private static OnnxProto.TensorProto AsDeclared(OnnxProto.TensorProto t, OnnxProto.ValueInfoProto declared)
    {
        if (t.DataType == (int)OnnxProto.TensorProto.Types.DataType.Uint16
            && declared.Type?.TensorType?.ElemType == (int)OnnxProto.TensorProto.Types.DataType.Bfloat16)
        {
            t = t.Clone();
            t.DataType = (int)OnnxProto.TensorProto.Types.DataType.Bfloat16;
        }
        return t;
    }

    private static string OneLine(string s)
    {
        var line = s.Replace('\n', ' ').Replace("  ", " ");
        return line.Length > 300 ? line[..300] + "…" : line;
    }

    private static void Report(List<Result> results, int unclaimed, string data, bool markdown)
    {
        int pass = results.Count(r => r.Outcome == Outcome.Pass);
        int refused = results.Count(r => r.Outcome == Outcome.Refused);
        int wrong = results.Count(r => r.Outcome == Outcome.Wrong);
        Console.WriteLine($"node tests in {data}: {results.Count + unclaimed}; claimed (every op in SupportedOperators): {results.Count}; "
            + $"pass {pass}, refused {refused}, wrong {wrong}; tolerance |got − expected| ≤ {Atol:G2} + {Rtol:G2}·|expected|");
        Console.WriteLine();
        Console.WriteLine("| ops | tests | pass | refused | wrong |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var g in results.GroupBy(r => r.Ops).OrderBy(g => g.Key, StringComparer.Ordinal))
            Console.WriteLine($"| {g.Key} | {g.Count()} | {g.Count(r => r.Outcome == Outcome.Pass)} | {g.Count(r => r.Outcome == Outcome.Refused)} | {g.Count(r => r.Outcome == Outcome.Wrong)} |");
        Console.WriteLine($"| **all** | {results.Count} | {pass} | {refused} | {wrong} |");
        Console.WriteLine();
        if (markdown)
        {
            // Refusals grouped by what they say (file paths and quoted names left out), most frequent first.
            Console.WriteLine("| refusals | reason | tests |");
            Console.WriteLine("|---:|---|---|");
            foreach (var g in results.Where(r => r.Outcome != Outcome.Pass).GroupBy(r => (r.Outcome, Reason(r.Detail)))
                         .OrderByDescending(g => g.Count()).ThenBy(g => g.Key.Item2, StringComparer.Ordinal))
            {
                var tests = g.Select(r => r.Test["test_".Length..]).ToArray();
                var shown = string.Join(", ", tests.Take(6)) + (tests.Length > 6 ? $", … ({tests.Length - 6} more)" : "");
                var label = g.Key.Outcome == Outcome.Wrong ? "**wrong**: " : "";
                Console.WriteLine($"| {g.Count()} | {label}{g.Key.Item2.Replace("|", "\\|")} | {shown} |");
            }
            return;
        }
        Console.WriteLine("refusals and failures:");
        foreach (var r in results.Where(r => r.Outcome != Outcome.Pass))
            Console.WriteLine($"  {r.Outcome,-8} {r.Test}: {r.Detail}");
    }
}
