using TransferSharp.Tests.Support;
using TransferSharp.Training;
using Xunit;

namespace TransferSharp.Tests.Training;

[Trait("Category", "Training")]
public sealed class MetricsTests
{
    // Confusion matrix (rows true, columns predicted):
    //        a  b  c
    //   a    5  1  0
    //   b    2  3  1
    //   c    0  0  0      (class c never occurs, but is predicted once)
    private static readonly int[] Truth = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
    private static readonly int[] Predicted = [0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 2];

    [Fact]
    public void PrecisionRecallF1AndConfusionMatrixMatchHandComputedValues()
    {
        var r = new EvaluationReport(["a", "b", "c"], Truth, Predicted, topK: 2, topKHits: 11, loss: 0.5);
        Assert.Equal([5, 1, 0], r.ConfusionMatrix[0]);
        Assert.Equal([2, 3, 1], r.ConfusionMatrix[1]);
        Assert.Equal([0, 0, 0], r.ConfusionMatrix[2]);
        Assert.Equal(8 / 12.0, r.Accuracy, 12);
        Assert.Equal(11 / 12.0, r.TopKAccuracy, 12);
        // a: precision 5/7, recall 5/6; b: precision 3/4, recall 3/6; c: 0 predicted correct of 1 predicted, no support.
        Assert.Equal(5 / 7.0, r.PerClass[0].Precision, 12);
        Assert.Equal(5 / 6.0, r.PerClass[0].Recall, 12);
        Assert.Equal(2 * (5 / 7.0) * (5 / 6.0) / (5 / 7.0 + 5 / 6.0), r.PerClass[0].F1, 12);
        Assert.Equal(0.75, r.PerClass[1].Precision, 12);
        Assert.Equal(0.5, r.PerClass[1].Recall, 12);
        Assert.Equal(0.6, r.PerClass[1].F1, 12);
        Assert.Equal(0, r.PerClass[2].Precision);
        Assert.Equal(0, r.PerClass[2].Support);
        // scikit-learn's f1_score(average="macro", zero_division=0) averages over the labels true or predicted: c, predicted
        // once and never true, counts with F1 0 (precision 0/1, recall undefined → 0).
        Assert.Equal((r.PerClass[0].F1 + 0.6 + 0) / 3, r.MacroF1, 12);
        Assert.Equal((5 / 7.0 + 0.75 + 0) / 3, r.MacroPrecision, 12);
        Assert.Equal((5 / 6.0 + 0.5 + 0) / 3, r.MacroRecall, 12);
        var text = r.ConfusionMatrixText().Split('\n');
        Assert.Matches(@"^a\s+5\s+1\s+0$", text[1]);
        Assert.Matches(@"^b\s+2\s+3\s+1$", text[2]);
    }

    [Fact]
    public void LabelsByNameGiveTheSameReportAsClassIndices()
    {
        // What text evaluation computes (labels by name) and what vision evaluation computes (class indices) on the same
        // predictions: one macro F1. A class neither true nor predicted (d) is left out of the macro mean, as scikit-learn does.
        string[] names = ["a", "b", "c", "d"];
        var byIndex = new EvaluationReport(names, Truth, Predicted);
        var byName = EvaluationReport.FromLabels(Truth.Select(i => names[i]).ToList(), Predicted.Select(i => names[i]).ToList());
        Assert.Equal(["a", "b", "c"], byName.ClassNames);
        Assert.Equal(byIndex.MacroF1, byName.MacroF1, 15);
        Assert.Equal(byIndex.MacroPrecision, byName.MacroPrecision, 15);
        Assert.Equal(byIndex.Accuracy, byName.Accuracy, 15);
        Assert.Equal(byIndex.PerClass.Take(3), byName.PerClass);
        Assert.Equal(new EvaluationReport(["a", "b", "c"], Truth, Predicted).MacroF1, byIndex.MacroF1, 15);
    }

    [Fact]
    public void PicturesAreWrittenAsPng()
    {
        var dir = Paths.NewTempDir();
        try
        {
            var r = new EvaluationReport(["a", "b", "c"], Truth, Predicted);
            var cm = Path.Combine(dir, "cm.png");
            r.SaveConfusionMatrixPng(cm, "test");
            var curves = Path.Combine(dir, "curves.png");
            Plots.SaveTrainingCurves([new EpochRecord(1, 1, 1.0, 0.5, 1.1, 0.4, 1e-3, 1), new EpochRecord(2, 2, 0.5, 0.8, 0.7, 0.7, 1e-4, 1)], curves);
            foreach (var f in new[] { cm, curves })
            {
                var head = File.ReadAllBytes(f)[..8];
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }, head);
                using var bitmap = SkiaSharp.SKBitmap.Decode(f);
                Assert.True(bitmap.Width >= 500);
                // Text rendered: some pixels are dark (labels, numbers) and not only the plot lines' colours.
                int dark = 0;
                for (int y = 0; y < bitmap.Height; y += 2)
                    for (int x = 0; x < bitmap.Width; x += 2)
                        if (bitmap.GetPixel(x, y) is var p && p.Red < 80 && p.Green < 80 && p.Blue < 80) dark++;
                Assert.True(dark > 200, $"{f}: only {dark} dark pixels; did the text render?");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
