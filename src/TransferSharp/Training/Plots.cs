using ScottPlot;
using SkiaSharp;
using TransferSharp.IO;

namespace TransferSharp.Training;

/// <summary>PNG pictures of training curves and confusion matrices, drawn with ScottPlot in an embedded font
/// (DejaVu Sans), so text renders the same on machines without any font installed.</summary>
public static class Plots
{
    private const string FontName = "DejaVu Sans (TransferSharp)";
    private static readonly Lazy<SKTypeface> Typeface = new(() =>
    {
        using var stream = typeof(Plots).Assembly.GetManifestResourceStream("TransferSharp.DejaVuSans.ttf")
            ?? throw new InvalidOperationException("the embedded plot font is missing from the assembly");
        return SKTypeface.FromStream(stream) ?? throw new InvalidOperationException("the embedded plot font cannot be read");
    });
    private static int _registered;

    private sealed class EmbeddedFontResolver : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width) =>
            fontName == FontName ? Typeface.Value : null;

        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) =>
            fontName == FontName ? Typeface.Value : null;
    }

    private static Plot NewPlot()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0) Fonts.FontResolvers.Insert(0, new EmbeddedFontResolver());
        var plot = new Plot();
        plot.Font.Set(FontName);
        return plot;
    }

    /// <summary>Loss and accuracy per epoch, training and validation, side by side (stage changes marked).</summary>
    public static void SaveTrainingCurves(IReadOnlyList<EpochRecord> history, string path, string? title = null)
    {
        if (history.Count == 0) throw new ArgumentException("no epochs to plot");
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        var loss = NewPlot();
        var acc = NewPlot();
        AddLine(loss, epochs, history.Select(h => h.TrainLoss), "train", Colors.C0, false);
        AddLine(acc, epochs, history.Select(h => h.TrainAccuracy), "train", Colors.C0, false);
        if (history.Any(h => h.ValidationLoss is not null))
        {
            var withVal = history.Where(h => h.ValidationLoss is not null).ToArray();
            AddLine(loss, withVal.Select(h => (double)h.Epoch).ToArray(), withVal.Select(h => h.ValidationLoss!.Value), "validation", Colors.C1, true);
            AddLine(acc, withVal.Select(h => (double)h.Epoch).ToArray(), withVal.Select(h => h.ValidationAccuracy!.Value), "validation", Colors.C1, true);
        }
        var stage2 = history.FirstOrDefault(h => h.Stage == 2);
        if (stage2 is not null && history[0].Stage == 1)
        {
            foreach (var p in new[] { loss, acc })
            {
                var line = p.Add.VerticalLine(stage2.Epoch - 0.5, 1, Colors.Gray, LinePattern.Dashed);
                line.LabelText = "fine-tuning starts";
            }
        }
        loss.Title((title is null ? "" : title + ": ") + "loss");
        acc.Title((title is null ? "" : title + ": ") + "accuracy");
        loss.XLabel("epoch");
        acc.XLabel("epoch");
        loss.YLabel("cross-entropy");
        acc.YLabel("accuracy");
        acc.Axes.SetLimitsY(Math.Min(0, acc.Axes.GetLimits().Bottom), 1.02);
        foreach (var p in new[] { loss, acc })
        {
            p.ShowLegend(Alignment.UpperRight);
            if (epochs.Length <= 20) p.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(Math.Max(1, Math.Ceiling(epochs.Length / 10.0)));
        }
        acc.Legend.Alignment = Alignment.LowerRight;
        SaveSideBySide(path, 1200, 450, loss, acc);
    }

    private static void AddLine(Plot plot, double[] xs, IEnumerable<double> ys, string label, Color color, bool dashed)
    {
        var s = plot.Add.Scatter(xs, ys.ToArray(), color);
        s.LegendText = label;
        s.LineWidth = 2;
        s.MarkerSize = 6;
        if (dashed) s.LinePattern = LinePattern.Dashed;
    }

    private static void SaveSideBySide(string path, int width, int height, params Plot[] plots)
    {
        var info = new SKImageInfo(width, height);
        using var surface = SKSurface.Create(info);
        surface.Canvas.Clear(SKColors.White);
        int w = width / plots.Length;
        // A plot clears the whole canvas it renders on: render each on its own surface, then paste.
        for (int i = 0; i < plots.Length; i++)
        {
            using var part = SKSurface.Create(new SKImageInfo(w, height));
            plots[i].Render(part.Canvas, new PixelRect(0, w, height, 0));
            using var snapshot = part.Snapshot();
            surface.Canvas.DrawImage(snapshot, i * w, 0, new SKSamplingOptions(SKFilterMode.Nearest), null);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, fs => data.SaveTo(fs));
    }

    /// <summary>The confusion matrix: cells coloured by the row-normalised rate, with counts; axes name the classes.</summary>
    public static void SaveConfusionMatrix(EvaluationReport report, string path, string? title = null)
    {
        int k = report.ClassNames.Count;
        var plot = NewPlot();
        var colormap = new ScottPlot.Colormaps.Blues();
        for (int r = 0; r < k; r++)
        {
            int rowSum = Math.Max(1, report.ConfusionMatrix[r].Sum());
            for (int c = 0; c < k; c++)
            {
                double rate = report.ConfusionMatrix[r][c] / (double)rowSum;
                double y = k - 1 - r;
                var rect = plot.Add.Rectangle(c - 0.5, c + 0.5, y - 0.5, y + 0.5);
                rect.FillColor = colormap.GetColor(0.97 - rate * 0.9); // this map runs dark → light
                rect.LineColor = Colors.White;
                var text = plot.Add.Text(report.ConfusionMatrix[r][c].ToString(), c, y);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = k > 20 ? 8 : 13;
                text.LabelFontColor = rate > 0.5 ? Colors.White : Colors.Black;
            }
        }
        var positions = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, report.ClassNames.ToArray());
        plot.Axes.Left.SetTicks(positions, report.ClassNames.Reverse().ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.UpperLeft;
        plot.Axes.Bottom.TickLabelStyle.OffsetY = 2;
        // The cells show where each class is; tick marks would only cover the first letters of the rotated names.
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.MinorTickStyle.Length = 0;
        plot.Axes.Left.MinorTickStyle.Length = 0;
        int longest = report.ClassNames.Max(n => n.Length);
        plot.Layout.Fixed(new PixelPadding(30 + 8 * longest, 30, 30 + 6 * longest, 70));
        plot.Axes.SetLimits(-0.5, k - 0.5, -0.5, k - 0.5);
        // Axis labels would collide with the rotated class names: the title says which axis is which.
        plot.Title((title is null ? "" : title + ": ") + $"accuracy {report.Accuracy:P1} on {report.Count} samples\nrows: true class, columns: predicted class");
        plot.Grid.IsVisible = false;
        int size = Math.Clamp(300 + 48 * k, 500, 1600);
        SaveSideBySide(path, size + 80, size, plot);
    }
}
