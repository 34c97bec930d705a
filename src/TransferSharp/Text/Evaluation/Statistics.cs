namespace TransferSharp.Text.Evaluation;

/// <summary>
/// Pearson and Spearman correlation with two-sided p-values, computed as SciPy 1.10 does for gensim's
/// <c>evaluate_word_pairs</c>: Spearman is Pearson on average ranks (ties share the mean of their ranks);
/// the p-values come from Student's t (Spearman) and the symmetric beta distribution (Pearson), both through
/// the regularized incomplete beta function.
/// </summary>
internal static class Statistics
{
    public static (double R, double P) Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = x.Count;
        if (n != y.Count) throw new ArgumentException("x and y differ in length");
        if (n < 2) return (double.NaN, double.NaN);
        double mx = x.Average(), my = y.Average();
        double sxx = 0, syy = 0, sxy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        if (sxx == 0 || syy == 0) return (double.NaN, double.NaN);
        double r = Math.Clamp(sxy / Math.Sqrt(sxx) / Math.Sqrt(syy), -1, 1);
        if (n == 2) return (r, 1.0);
        double ab = n / 2.0 - 1;
        double p = 2 * RegularizedIncompleteBeta(ab, ab, (1 - Math.Abs(r)) / 2);
        return (r, Math.Min(1, p));
    }

    public static (double Rho, double P) Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = x.Count;
        if (n < 2) return (double.NaN, double.NaN);
        var (rho, _) = Pearson(AverageRanks(x), AverageRanks(y));
        if (double.IsNaN(rho)) return (double.NaN, double.NaN);
        int dof = n - 2;
        if (dof <= 0) return (rho, double.NaN);
        double denominator = (rho + 1.0) * (1.0 - rho);
        if (denominator <= 0) return (rho, 0.0);
        double t = rho * Math.Sqrt(dof / denominator);
        double p = RegularizedIncompleteBeta(dof / 2.0, 0.5, dof / (dof + t * t));
        return (rho, p);
    }

    /// <summary>Ranks 1..n; tied values get the mean of the ranks they span (SciPy's rankdata 'average').</summary>
    public static double[] AverageRanks(IReadOnlyList<double> values)
    {
        int n = values.Count;
        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ToArray();
        var ranks = new double[n];
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && values[order[j + 1]] == values[order[i]]) j++;
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = rank;
            i = j + 1;
        }
        return ranks;
    }

    /// <summary>I_x(a, b) by the continued fraction (modified Lentz), using the symmetry for fast convergence.</summary>
    public static double RegularizedIncompleteBeta(double a, double b, double x)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        double lnFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        if (x < (a + 1) / (a + b + 2)) return Math.Exp(lnFront) * ContinuedFraction(a, b, x) / a;
        return 1 - Math.Exp(lnFront) * ContinuedFraction(b, a, 1 - x) / b;
    }

    private static double ContinuedFraction(double a, double b, double x)
    {
        const double tiny = 1e-300, eps = 1e-16;
        double c = 1, d = 1 - (a + b) * x / (a + 1);
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= 10_000; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            h *= d * c;
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < eps) break;
        }
        return h;
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9; about 15 significant digits).</summary>
    public static double LogGamma(double x)
    {
        ReadOnlySpan<double> c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        double sum = c[0];
        for (int i = 1; i < 9; i++) sum += c[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
