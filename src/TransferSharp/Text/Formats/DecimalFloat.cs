using System.Globalization;
using System.Text;

namespace TransferSharp.Text.Formats;

/// <summary>
/// Culture-invariant decimal ↔ float32 conversion for vector files. Parsing is correctly rounded (bit-identical
/// to <see cref="float.Parse(string, IFormatProvider)"/>): the common case (≤ 19 significant digits, exponent
/// within ±22) is Clinger's fast path in double precision with a check for the one case where rounding twice
/// (decimal → double → float) could differ, a value landing exactly between two floats; everything else falls
/// back to the framework parser. Formatting writes the shortest round-trip digits the way numpy's
/// <c>repr(np.float32(x))</c> does, which is how gensim writes text vectors.
/// </summary>
internal static class DecimalFloat
{
    private static readonly double[] PowersOf10 =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];

    /// <summary>
    /// Parses a number at the start of <paramref name="s"/> (sign, digits, optional fraction and exponent, or
    /// nan/inf/infinity as Python's float() accepts). Returns the bytes consumed, 0 if no number starts there.
    /// The caller checks that a separator follows.
    /// </summary>
    public static int Parse(ReadOnlySpan<byte> s, out float value)
    {
        value = 0;
        int i = 0;
        bool negative = false;
        if (i < s.Length && (s[i] == (byte)'-' || s[i] == (byte)'+'))
        {
            negative = s[i] == (byte)'-';
            i++;
        }
        ulong mantissa = 0;
        int significant = 0, exponent = 0;
        bool anyDigit = false, dropped = false;
        while (i < s.Length && (uint)(s[i] - '0') <= 9)
        {
            uint d = (uint)(s[i] - '0');
            anyDigit = true;
            if (mantissa == 0 && d == 0) { }
            else if (significant < 19) { mantissa = mantissa * 10 + d; significant++; }
            else { exponent++; dropped |= d != 0; }
            i++;
        }
        if (i < s.Length && s[i] == (byte)'.')
        {
            i++;
            while (i < s.Length && (uint)(s[i] - '0') <= 9)
            {
                uint d = (uint)(s[i] - '0');
                anyDigit = true;
                if (mantissa == 0 && d == 0) exponent--;
                else if (significant < 19) { mantissa = mantissa * 10 + d; significant++; exponent--; }
                else dropped |= d != 0;
                i++;
            }
        }
        if (!anyDigit) return ParseSpecial(s, i, negative, out value);
        if (i < s.Length && (s[i] | 0x20) == (byte)'e')
        {
            int j = i + 1;
            bool expNegative = false;
            if (j < s.Length && (s[j] == (byte)'-' || s[j] == (byte)'+'))
            {
                expNegative = s[j] == (byte)'-';
                j++;
            }
            if (j >= s.Length || (uint)(s[j] - '0') > 9) return 0;
            int e = 0;
            while (j < s.Length && (uint)(s[j] - '0') <= 9)
            {
                if (e < 100_000) e = e * 10 + (s[j] - '0');
                j++;
            }
            exponent += expNegative ? -e : e;
            i = j;
        }
        if (mantissa == 0)
        {
            value = negative ? -0f : 0f;
            return i;
        }
        if (!dropped && mantissa <= 1UL << 53 && exponent is >= -22 and <= 22)
        {
            double d = mantissa;
            d = exponent < 0 ? d / PowersOf10[-exponent] : d * PowersOf10[exponent];
            if (!IsFloatMidpoint(d))
            {
                value = negative ? -(float)d : (float)d;
                return i;
            }
        }
        value = float.Parse(s[..i], NumberStyles.Float, CultureInfo.InvariantCulture);
        return i;
    }

    // A double exactly halfway between two adjacent floats would be rounded to even a second time; the
    // decimal itself may lie a hair to either side, so such values go to the exact parser.
    private static bool IsFloatMidpoint(double d)
    {
        ulong bits = BitConverter.DoubleToUInt64Bits(d);
        return (bits & 0x1FFF_FFFFUL) == 0x1000_0000UL;
    }

    private static int ParseSpecial(ReadOnlySpan<byte> s, int i, bool negative, out float value)
    {
        value = 0;
        var rest = s[i..];
        if (StartsWithIgnoreCase(rest, "nan"u8)) { value = float.NaN; return i + 3; }
        if (StartsWithIgnoreCase(rest, "infinity"u8)) { value = negative ? float.NegativeInfinity : float.PositiveInfinity; return i + 8; }
        if (StartsWithIgnoreCase(rest, "inf"u8)) { value = negative ? float.NegativeInfinity : float.PositiveInfinity; return i + 3; }
        return 0;
    }

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> s, ReadOnlySpan<byte> lower)
    {
        if (s.Length < lower.Length) return false;
        for (int k = 0; k < lower.Length; k++)
            if ((s[k] | 0x20) != lower[k]) return false;
        return true;
    }

    /// <summary>Appends <c>repr(np.float32(value))</c>: shortest round-trip digits, positional for
    /// 1e-4 ≤ |x| &lt; 1e16 (keeping one fractional zero), otherwise scientific with a two-digit exponent.</summary>
    public static void AppendNumpyRepr(StringBuilder sb, float value)
    {
        if (float.IsNaN(value)) { sb.Append("nan"); return; }
        if (float.IsInfinity(value)) { sb.Append(value < 0 ? "-inf" : "inf"); return; }
        if (value == 0) { sb.Append(float.IsNegative(value) ? "-0.0" : "0.0"); return; }
        if (value < 0) sb.Append('-');
        float abs = Math.Abs(value);
        Span<char> buffer = stackalloc char[32];
        abs.TryFormat(buffer, out int written, "R", CultureInfo.InvariantCulture);
        Span<char> digits = stackalloc char[32];
        int nDigits = 0, pointExponent = 0; // value = 0.d1d2... × 10^pointExponent
        bool seenPoint = false, leading = true;
        int k = 0;
        for (; k < written; k++)
        {
            char c = buffer[k];
            if (c == '.') { seenPoint = true; continue; }
            if (c is 'E' or 'e') break;
            if (leading && c == '0')
            {
                if (seenPoint) pointExponent--;
                continue;
            }
            leading = false;
            digits[nDigits++] = c;
            if (!seenPoint) pointExponent++;
        }
        if (k < written) pointExponent += int.Parse(buffer[(k + 1)..written], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        while (nDigits > 1 && digits[nDigits - 1] == '0') nDigits--;
        int sciExponent = pointExponent - 1;
        double a = abs;
        if (a >= 1e-4 && a < 1e16)
        {
            if (pointExponent <= 0)
            {
                sb.Append("0.").Append('0', -pointExponent).Append(digits[..nDigits]);
            }
            else
            {
                int intDigits = Math.Min(pointExponent, nDigits);
                sb.Append(digits[..intDigits]).Append('0', pointExponent - intDigits).Append('.');
                if (nDigits > pointExponent) sb.Append(digits[pointExponent..nDigits]);
                else sb.Append('0');
            }
        }
        else
        {
            sb.Append(digits[0]);
            if (nDigits > 1) sb.Append('.').Append(digits[1..nDigits]);
            sb.Append('e').Append(sciExponent < 0 ? '-' : '+');
            int e = Math.Abs(sciExponent);
            if (e < 10) sb.Append('0');
            sb.Append(e);
        }
    }
}
