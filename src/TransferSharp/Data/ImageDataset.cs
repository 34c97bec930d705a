using System.Text;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Data;

/// <summary>
/// Image files with labels: an ImageNet-style folder (one subfolder per class) or a CSV/TSV manifest
/// (<c>path,label</c>, paths relative to the manifest). Files are decoded only when a loader asks.
/// </summary>
public sealed class ImageDataset : Dataset
{
    /// <summary>File extensions taken from class folders (case-insensitive).</summary>
    public static IReadOnlyList<string> ImageExtensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    private readonly string[] _paths;
    private readonly int[] _labels;
    private readonly string[] _classNames;

    /// <summary>Wraps explicit files and labels.</summary>
    public ImageDataset(IReadOnlyList<string> paths, IReadOnlyList<int> labels, IReadOnlyList<string> classNames, string origin = "files")
    {
        if (paths.Count != labels.Count) throw new ArgumentException($"{paths.Count} paths but {labels.Count} labels");
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] < 0 || labels[i] >= classNames.Count)
                throw new ArgumentException($"label {labels[i]} of '{paths[i]}' is outside the {classNames.Count} classes");
        _paths = paths.ToArray();
        _labels = labels.ToArray();
        _classNames = classNames.ToArray();
        Origin = origin;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <inheritdoc />
    public override int Count => _paths.Length;

    /// <inheritdoc />
    public override int LabelOf(int index) => _labels[index];

    /// <inheritdoc />
    public override string SourceOf(int index) => _paths[index];

    /// <inheritdoc />
    public override string Origin { get; }

    /// <summary>The median shorter side, in pixels, of up to <paramref name="sample"/> images spread over the set, read from
    /// their headers (nothing is decoded); null when none could be read. Says whether the images are thumbnails that a
    /// 224-pixel input would only blow up.</summary>
    public int? TypicalShortSide(int sample = 64)
    {
        if (sample < 1) throw new ArgumentOutOfRangeException(nameof(sample));
        var sides = new List<int>();
        int n = Math.Min(sample, _paths.Length);
        for (int k = 0; k < n; k++)
        {
            if (ImageDecoder.ReadSize(_paths[(int)((long)k * _paths.Length / n)]) is { } size) sides.Add(Math.Min(size.Width, size.Height));
        }
        if (sides.Count == 0) return null;
        sides.Sort();
        return sides[sides.Count / 2];
    }

    /// <summary>Opens a folder (class subfolders) or a manifest (.csv/.tsv), by what the path is.</summary>
    public static ImageDataset Open(string path) =>
        File.Exists(path) ? FromManifest(path) : FromFolder(path);

    /// <summary>
    /// An ImageNet-style folder: each subfolder is a class (sorted by name, ordinal, as torchvision's
    /// ImageFolder does) holding its images (searched recursively). A class folder without images is an
    /// error naming it, as is a folder with no class folders; files that are not images by extension are ignored.
    /// </summary>
    public static ImageDataset FromFolder(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DatasetException($"{directory}: no such folder (expected one subfolder per class, or a .csv/.tsv manifest)");
        var classDirs = Directory.GetDirectories(directory).Where(d => !Path.GetFileName(d).StartsWith('.'))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0)
            throw new DatasetException($"{directory}: no class subfolders; put the images of each class in a subfolder named after the class (e.g. {Path.Combine(directory, "cat", "001.jpg")})");
        var paths = new List<string>();
        var labels = new List<int>();
        var empty = new List<string>();
        for (int c = 0; c < classDirs.Length; c++)
        {
            var files = Directory.EnumerateFiles(classDirs[c], "*", SearchOption.AllDirectories)
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase) && !Path.GetFileName(f).StartsWith('.'))
                .OrderBy(f => f, StringComparer.Ordinal).ToArray();
            if (files.Length == 0) empty.Add(classDirs[c]);
            paths.AddRange(files);
            labels.AddRange(Enumerable.Repeat(c, files.Length));
        }
        if (empty.Count > 0)
            throw new DatasetException($"{directory}: class folder{(empty.Count > 1 ? "s" : "")} {string.Join(", ", empty.Select(e => $"'{Path.GetFileName(e)}'"))} hold{(empty.Count > 1 ? "" : "s")} no images ({string.Join(", ", ImageExtensions)}); add images or remove the folder");
        return new ImageDataset(paths, labels, classDirs.Select(Path.GetFileName).ToArray()!, directory);
    }

    /// <summary>
    /// A manifest: one <c>path,label</c> line per image (tab-separated for .tsv or when the first line has a tab),
    /// an optional header line <c>path,label</c>, double quotes around fields that contain the separator.
    /// Relative paths are relative to the manifest's folder. Classes are the distinct labels, sorted (ordinal).
    /// Lines naming missing files are an error listing them (up to 10) with their line numbers.
    /// </summary>
    public static ImageDataset FromManifest(string manifestPath)
    {
        if (!File.Exists(manifestPath)) throw new DatasetException($"{manifestPath}: no such manifest file");
        var lines = File.ReadAllLines(manifestPath, Encoding.UTF8);
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        char sep = manifestPath.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) || (lines.Length > 0 && lines[0].Contains('\t')) ? '\t' : ',';
        var rows = new List<(string Path, string Label, int Line)>();
        var missing = new List<string>();
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#')) continue;
            var fields = SplitFields(line, sep);
            if (fields.Count != 2)
                throw new DatasetException($"{manifestPath}, line {n + 1}: expected 2 fields (path{(sep == '\t' ? "<TAB>" : ",")}label), found {fields.Count}: '{(line.Length > 120 ? line[..120] + "…" : line)}'");
            var (file, label) = (fields[0].Trim(), fields[1].Trim());
            if (rows.Count == 0 && file.Equals("path", StringComparison.OrdinalIgnoreCase) && label.Equals("label", StringComparison.OrdinalIgnoreCase)) continue;
            if (file.Length == 0 || label.Length == 0) throw new DatasetException($"{manifestPath}, line {n + 1}: empty path or label");
            if (file.Contains('\0')) throw new DatasetException($"{manifestPath}, line {n + 1}: the path holds a NUL byte: not a text manifest");
            var full = Path.IsPathRooted(file) ? file : Path.GetFullPath(Path.Combine(baseDir, file));
            if (!File.Exists(full)) missing.Add($"line {n + 1}: {file}");
            rows.Add((full, label, n + 1));
        }
        if (missing.Count > 0)
            throw new DatasetException($"{manifestPath}: {missing.Count} file{(missing.Count > 1 ? "s" : "")} named in the manifest do{(missing.Count > 1 ? "" : "es")} not exist ({string.Join("; ", missing.Take(10))}{(missing.Count > 10 ? "; …" : "")}); paths are relative to the manifest's folder");
        if (rows.Count == 0) throw new DatasetException($"{manifestPath}: the manifest lists no images");
        var classes = rows.Select(r => r.Label).Distinct(StringComparer.Ordinal).OrderBy(l => l, StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        return new ImageDataset(rows.Select(r => r.Path).ToArray(), rows.Select(r => index[r.Label]).ToArray(), classes, manifestPath);
    }

    private static List<string> SplitFields(string line, char sep)
    {
        var fields = new List<string>();
        var current = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else current.Append(ch);
            }
            else if (ch == '"' && current.Length == 0) quoted = true;
            else if (ch == sep) { fields.Add(current.ToString()); current.Clear(); }
            else current.Append(ch);
        }
        fields.Add(current.ToString());
        return fields;
    }

    internal override void Fill(int index, SampleTransform transform, Random random, Span<float> destination)
    {
        var image = ImageDecoder.Decode(_paths[index]);
        var p = transform.Preprocessing;
        var shaped = transform.Augmentation is { } aug ? aug.Apply(image, p, random) : ImageTransforms.ResizeAndCrop(image, p);
        ImageTransforms.Normalize(shaped, p, destination);
    }
}
