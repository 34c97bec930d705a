using System.Text;

namespace TransferSharp.Text.Classification;

/// <summary>How a labelled text file is laid out.</summary>
public enum TextDataFormat
{
    /// <summary>Detect: fastText's format when a line starts with <c>__label__</c>, TSV for .tsv files or a
    /// tab in the first line, CSV otherwise.</summary>
    Auto,

    /// <summary>fastText: <c>__label__name text …</c> per line (the first label of a line is used).</summary>
    FastText,

    /// <summary>Comma-separated <c>text,label</c> (RFC 4180 quoting); a header naming the columns
    /// <c>text</c> and <c>label</c> may give another order.</summary>
    Csv,

    /// <summary>Tab-separated <c>text&lt;TAB&gt;label</c>, same header rule.</summary>
    Tsv,
}

/// <summary>One labelled text.</summary>
public readonly record struct TextExample(string Text, string Label);

/// <summary>Labelled texts read from a file, in file order.</summary>
public sealed class TextDataset
{
    /// <summary>The fastText label prefix.</summary>
    public const string LabelPrefix = "__label__";

    /// <summary>Creates a dataset from examples.</summary>
    public TextDataset(IReadOnlyList<TextExample> examples, string source = "(memory)")
    {
        Examples = examples;
        Source = source;
    }

    /// <summary>Where it came from.</summary>
    public string Source { get; }

    /// <summary>The examples.</summary>
    public IReadOnlyList<TextExample> Examples { get; }

    /// <summary>The distinct labels, sorted (ordinal).</summary>
    public IReadOnlyList<string> Labels => Examples.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>Lines of a fastText file that carried more than one label (only the first was kept).</summary>
    public int MultiLabelLines { get; private init; }

    /// <summary>Reads a fastText, CSV or TSV file (UTF-8). Malformed lines raise <see cref="InvalidFileException"/>
    /// with the line number; bytes that are not UTF-8 raise <see cref="IO.InvalidUtf8Exception"/> with the line and
    /// byte offset (never a silent U+FFFD).</summary>
    public static TextDataset Load(string path, TextDataFormat format = TextDataFormat.Auto)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        var text = IO.StrictUtf8.ReadFile(path);
        if (format == TextDataFormat.Auto) format = Detect(path, text);
        return format == TextDataFormat.FastText ? ReadFastText(path, text) : ReadDelimited(path, text, format == TextDataFormat.Tsv ? '\t' : ',');
    }

    private static TextDataFormat Detect(string path, string text)
    {
        var first = text.Split('\n', 2)[0];
        if (first.TrimStart().StartsWith(LabelPrefix, StringComparison.Ordinal)) return TextDataFormat.FastText;
        if (path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) || first.Contains('\t')) return TextDataFormat.Tsv;
        return TextDataFormat.Csv;
    }

    private static TextDataset ReadFastText(string path, string text)
    {
        var examples = new List<TextExample>();
        int multi = 0, lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var tokens = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0) continue;
            var labels = tokens.Where(t => t.StartsWith(LabelPrefix, StringComparison.Ordinal)).ToList();
            if (labels.Count == 0) throw new InvalidFileException(path, $"line {lineNo} has no {LabelPrefix} label");
            if (labels.Count > 1) multi++;
            var label = labels[0][LabelPrefix.Length..];
            if (label.Length == 0) throw new InvalidFileException(path, $"line {lineNo}: the label is empty");
            examples.Add(new TextExample(string.Join(' ', tokens.Where(t => !t.StartsWith(LabelPrefix, StringComparison.Ordinal))), label));
        }
        if (examples.Count == 0) throw new InvalidFileException(path, "no labelled lines");
        return new TextDataset(examples, path) { MultiLabelLines = multi };
    }

    private static TextDataset ReadDelimited(string path, string text, char delimiter)
    {
        var rows = ParseDelimited(path, text, delimiter);
        if (rows.Count == 0) throw new InvalidFileException(path, "no rows");
        int textColumn = 0, labelColumn = 1, start = 0;
        var header = rows[0].Fields.Select(h => h.Trim().ToLowerInvariant()).ToList();
        if (header.Contains("text") && header.Contains("label"))
        {
            textColumn = header.IndexOf("text");
            labelColumn = header.IndexOf("label");
            start = 1;
        }
        var examples = new List<TextExample>();
        for (int r = start; r < rows.Count; r++)
        {
            var (line, fields) = rows[r];
            if (fields.Count == 1 && fields[0].Length == 0) continue;
            if (fields.Count <= Math.Max(textColumn, labelColumn))
                throw new InvalidFileException(path, $"line {line} has {fields.Count} field(s); expected text{(delimiter == '\t' ? "<TAB>" : ",")}label");
            var label = fields[labelColumn].Trim();
            if (label.Length == 0) throw new InvalidFileException(path, $"line {line}: the label is empty");
            examples.Add(new TextExample(fields[textColumn], label));
        }
        if (examples.Count == 0) throw new InvalidFileException(path, "no labelled rows");
        return new TextDataset(examples, path);
    }

    /// <summary>RFC 4180: fields may be quoted; quotes inside are doubled; quoted fields may span lines.</summary>
    private static List<(int Line, List<string> Fields)> ParseDelimited(string path, string text, char delimiter)
    {
        var rows = new List<(int, List<string>)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, rowLine = 1, i = 0;
        bool quoted = false, wasQuoted = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                    quoted = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                i++;
                continue;
            }
            if (c == '"' && field.Length == 0 && !wasQuoted) { quoted = wasQuoted = true; i++; continue; }
            if (c == delimiter)
            {
                fields.Add(field.ToString());
                field.Clear();
                wasQuoted = false;
            }
            else if (c == '\n' || c == '\r')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                fields.Add(field.ToString());
                rows.Add((rowLine, fields));
                fields = [];
                field.Clear();
                wasQuoted = false;
                line++;
                rowLine = line;
            }
            else field.Append(c);
            i++;
        }
        if (quoted) throw new InvalidFileException(path, $"a quoted field opened on line {rowLine} is never closed");
        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            rows.Add((rowLine, fields));
        }
        return rows;
    }
}
