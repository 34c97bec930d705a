using System.Globalization;
using System.Text;

namespace TransferSharp.IO;

/// <summary>Text quoted from a file, made safe for a terminal: control characters (which can move the cursor, clear
/// the screen or ring the bell) are shown as <c>\xNN</c> / <c>\uNNNN</c> escapes instead of being sent raw.</summary>
internal static class Printable
{
    public static string Of(string text)
    {
        int i = 0;
        while (i < text.Length && !IsUnsafe(text[i])) i++;
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n') sb.Append(c); // a multi-line message stays multi-line
            else if (!IsUnsafe(c)) sb.Append(c);
            else if (c <= 0xff) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static bool IsUnsafe(char c) => c < 0x20 && c != '\n' || c is >= '\x7f' and <= '\x9f' || c is '\u2028' or '\u2029' or '\u200e' or '\u200f' or >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';
}
