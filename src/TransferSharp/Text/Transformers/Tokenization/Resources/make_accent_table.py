"""Writes accent_stripping.txt: for every code point whose canonical decomposition (NFD) differs from itself, the
decomposition with its non-spacing marks (category Mn) removed -- what Hugging Face's BertNormalizer keeps of a
character when it strips accents. Hangul syllables are left out (BertNormalization decomposes them by the Unicode
algorithm). .NET's string.Normalize does nothing in globalization-invariant mode, hence a table of our own.
Run: python3 make_accent_table.py  (the Unicode version of the Python used is written in the header)."""
import unicodedata

lines = [f"# NFD minus Mn per code point, Unicode {unicodedata.unidata_version}; made by make_accent_table.py; format: CODEPOINT KEPT... (hex)"]
for cp in range(0x110000):
    if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:
        continue
    ch = chr(cp)
    nfd = unicodedata.normalize("NFD", ch)
    if nfd == ch:
        continue
    kept = [c for c in nfd if unicodedata.category(c) != "Mn"]
    lines.append(" ".join(f"{ord(c):X}" for c in [ch] + kept))
with open("accent_stripping.txt", "w", encoding="ascii", newline="\n") as f:
    f.write("\n".join(lines) + "\n")
