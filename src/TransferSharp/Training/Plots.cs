using ScottPlot;
using SkiaSharp;
using TransferSharp.Vision;
using TransferSharp.Data;
using TransferSharp.IO;
using TransferSharp.Vision.Preprocessing;

namespace TransferSharp.Training;

/// <summary>PNG pictures of training curves, the learning-rate finder's curve, confusion matrices and top losses, drawn with ScottPlot in an embedded font
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
    /// <summary>The L-BFGS head fit's search (<see cref="HeadFitRecord"/>): validation loss and accuracy over the L2
    /// strength λ (log scale, strongest on the right), the λ kept marked.</summary>
    public static void SaveHeadFit(HeadFitRecord fit, string path, string? title = null)
    {
        var tried = fit.Candidates.Where(c => c.ValidationLoss is not null).ToArray();
        if (tried.Length == 0) throw new ArgumentException("the fit has no validation scores to plot");
        double[] xs = tried.Select(c => Math.Log10(c.L2)).ToArray();
        var loss = NewPlot();
        var acc = NewPlot();
        AddLine(loss, xs, tried.Select(c => c.ValidationLoss!.Value), "validation", Colors.C1, false);
        AddLine(acc, xs, tried.Select(c => c.ValidationAccuracy!.Value), "validation", Colors.C1, false);
        var ticks = Enumerable.Range((int)Math.Floor(xs.Min()), (int)Math.Ceiling(xs.Max()) - (int)Math.Floor(xs.Min()) + 1).Select(e => (double)e).ToArray();
        foreach (var (p, name) in new[] { (loss, "cross-entropy"), (acc, "accuracy") })
        {
            var kept = p.Add.VerticalLine(Math.Log10(fit.L2), 1, Colors.Gray, LinePattern.Dashed);
            kept.LegendText = $"kept λ {fit.L2:G2}";
            p.Axes.Bottom.SetTicks(ticks, ticks.Select(e => $"1e{e:0}").ToArray());
            p.XLabel("L2 strength λ (log scale)");
            p.YLabel(name);
            p.Title((title is null ? "" : title + ": ") + "head fit by L-BFGS, validation " + name);
            p.ShowLegend(Alignment.UpperRight);
        }
        SaveSideBySide(path, 1200, 450, loss, acc);
    }

    /// <summary>The range test's loss over the learning rate (log scale): raw losses faint, the smoothed curve bold,
    /// the suggested (valley) and steepest rates marked.</summary>
    public static void SaveLearningRateFinder(LearningRateFinderResult result, string path, string? title = null)
    {
        if (result.LearningRates.Count == 0) throw new ArgumentException("no learning rates to plot");
        var plot = NewPlot();
        double[] xs = result.LearningRates.Select(Math.Log10).ToArray();
        // The raw losses of the last steps can be orders of magnitude above the rest: clip the view, not the data.
        double low = result.SmoothedLosses.Where(double.IsFinite).DefaultIfEmpty(0).Min();
        double first = result.SmoothedLosses.Where(double.IsFinite).DefaultIfEmpty(1).First();
        double high = Math.Max(first, low) * 1.6 + 1e-3;
        var raw = plot.Add.Scatter(xs, result.Losses.Select(v => double.IsFinite(v) ? v : high).ToArray(), Colors.C0.WithAlpha(0.3));
        raw.LegendText = "loss";
        raw.MarkerSize = 0;
        var smooth = plot.Add.Scatter(xs, result.SmoothedLosses.Select(v => double.IsFinite(v) ? v : high).ToArray(), Colors.C0);
        smooth.LegendText = "smoothed loss";
        smooth.LineWidth = 2;
        smooth.MarkerSize = 0;
        var valley = plot.Add.VerticalLine(Math.Log10(result.SuggestedLearningRate), 2, Colors.C1);
        valley.LegendText = $"suggested (valley) {result.SuggestedLearningRate:G2}";
        var steep = plot.Add.VerticalLine(Math.Log10(result.SteepestLearningRate), 1, Colors.Gray, LinePattern.Dashed);
        steep.LegendText = $"steepest {result.SteepestLearningRate:G2}";
        var ticks = Enumerable.Range((int)Math.Floor(xs.Min()), (int)Math.Ceiling(xs.Max()) - (int)Math.Floor(xs.Min()) + 1).Select(e => (double)e).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, ticks.Select(e => $"1e{e:0}").ToArray());
        plot.Axes.SetLimits(xs.Min(), xs.Max(), Math.Max(0, low - 0.1 * (high - low)), high);
        plot.XLabel("learning rate (log scale)");
        plot.YLabel("training loss");
        plot.Title((title is null ? "" : title + ": ") + "learning-rate finder" + (result.Diverged ? " (stopped when the loss diverged)" : ""));
        plot.ShowLegend(Alignment.UpperLeft);
        SaveSideBySide(path, 800, 500, plot);
    }

    /// <summary>A grid of the samples of highest loss: each the model's input image under its predicted and true class,
    /// its loss and the predicted class's probability (fastai's <c>plot_top_losses</c>).</summary>
    public static void SaveTopLosses(EvaluationReport report, VisionModel model, Dataset data, string path, int count = 9, string? title = null)
    {
        var top = report.TopLosses(count);
        if (top.Count == 0) throw new ArgumentException("the report holds no per-sample predictions (evaluate with Evaluator.Evaluate)");
        data = data.AlignTo(model.Labels);
        var images = new Dictionary<int, SKBitmap>();
        try
        {
            foreach (var batch in DataLoader.Batches(data, top.Select(t => t.Index).ToArray(), new SampleTransform(model.Preprocessing), new LoaderOptions { BatchSize = top.Count }))
            {
                using (batch)
                {
                    for (int i = 0; i < batch.Indices.Length; i++)
                    {
                        using var image = batch.Images[i];
                        images[batch.Indices[i]] = ToBitmap(image, model.Preprocessing);
                    }
                }
            }
            int columns = (int)Math.Ceiling(Math.Sqrt(top.Count)), rows = (top.Count + columns - 1) / columns;
            const int cell = 224, caption = 58, pad = 12, header = 44;
            int width = columns * (cell + pad) + pad, height = header + rows * (cell + caption + pad);
            using var surface = SKSurface.Create(new SKImageInfo(width, height));
            var canvas = surface.Canvas;
            canvas.Clear(SKColors.White);
            using var font = new SKFont(Typeface.Value, 15);
            using var titleFont = new SKFont(Typeface.Value, 18);
            using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            using var wrong = new SKPaint { Color = new SKColor(0xC6, 0x28, 0x28), IsAntialias = true };
            canvas.DrawText((title is null ? "" : title + ": ") + $"top {top.Count} losses — predicted / true / loss / probability", pad, 28, SKTextAlign.Left, titleFont, ink);
            for (int n = 0; n < top.Count; n++)
            {
                var s = top[n];
                int x = pad + n % columns * (cell + pad), y = header + n / columns * (cell + caption + pad);
                if (images.TryGetValue(s.Index, out var bitmap))
                {
                    using var sized = SKImage.FromBitmap(bitmap);
                    canvas.DrawImage(sized, new SKRect(x, y, x + cell, y + cell), new SKSamplingOptions(SKFilterMode.Nearest));
                }
                var names = model.Labels;
                canvas.DrawText(Fit($"{names[s.Predicted]} / {names[s.Truth]}", font, cell), x, y + cell + 20, SKTextAlign.Left, font, s.Predicted == s.Truth ? ink : wrong);
                canvas.DrawText($"loss {s.Loss:F2}, p {s.Probability:F2}", x, y + cell + 42, SKTextAlign.Left, font, ink);
            }
            using var snapshot = surface.Snapshot();
            using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
            AtomicFile.Write(path, fs => png.SaveTo(fs));
        }
        finally
        {
            foreach (var b in images.Values) b.Dispose();
        }
    }

    /// <summary>The text, cut with an ellipsis to fit <paramref name="width"/> pixels.</summary>
    private static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text + "…";
    }

    /// <summary>A model input [C, H, W] back to 8-bit RGB: the preprocessing's normalisation and channel order undone.</summary>
    private static SKBitmap ToBitmap(TorchSharp.torch.Tensor input, Preprocessing preprocessing)
    {
        int c = (int)input.shape[0], h = (int)input.shape[1], w = (int)input.shape[2];
        var values = input.contiguous().data<float>().ToArray();
        var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        byte Channel(int channel, int i)
        {
            double v = values[channel * h * w + i] * preprocessing.Std[channel] + preprocessing.Mean[channel];
            return (byte)Math.Clamp(Math.Round(v / preprocessing.PixelScale * 255), 0, 255);
        }
        bool bgr = preprocessing.ChannelOrder == ChannelOrder.Bgr;
        var pixels = new byte[w * h * 4];
        for (int i = 0; i < w * h; i++)
        {
            byte r = Channel(c == 1 ? 0 : bgr ? 2 : 0, i), g = Channel(c == 1 ? 0 : 1, i), b = Channel(c == 1 ? 0 : bgr ? 0 : 2, i);
            (pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2], pixels[4 * i + 3]) = (r, g, b, 255);
        }
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        return bitmap;
    }
}
