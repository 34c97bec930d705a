#!/bin/bash
# Builds a second embedding fixture set "of the same shape" as ../shared/reference/embeddings with the real tools
# (Debian fasttext 0.9.2, /usr/bin/python3 gensim 4.2, python3-fasttext), following that README's commands on a
# different corpus (per-file budget 2048 instead of 4096) and different seeds (2 instead of 1). Then:
#   TRANSFERSHARP_EMBEDDINGS_DIR=OUT dotnet test tests/TransferSharp.Tests --filter Category=EmbeddingParity
# usage: make_alt_embeddings.sh [OUT=/work/altembeddings] [BUILD=OUT-build]   (needs: apt-get install fortunes)
set -euo pipefail
OUT=$(realpath -m "${1:-/work/altembeddings}")
BUILD=$(realpath -m "${2:-$OUT-build}")
README="$(cd "$(dirname "$0")/../../../.." && pwd)/shared/reference/embeddings/README.md"
mkdir -p "$OUT" "$BUILD"
/usr/bin/python3 - "$README" "$BUILD" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
for letter, name in zip('ABCD', ['build_corpus.py', 'make_sup.py', 'train_w2v.py', 'make_expected.py']):
    m = re.search(r'## Appendix ' + letter + ': ' + re.escape(name) + r'\n.*?```python\n(.*?)```', s, re.S)
    open(f'{sys.argv[2]}/{name}', 'w').write(m.group(1))
PY
cd "$BUILD" && /usr/bin/python3 build_corpus.py corpus.txt 2048
cd "$OUT"
fasttext skipgram -input "$BUILD/corpus.txt" -output ft -dim 16 -minCount 5 -bucket 20000 -minn 3 -maxn 5 -epoch 3 -thread 2 -seed 2 -verbose 0
/usr/bin/python3 "$BUILD/make_sup.py" . 5 2 people computers politics work science zippy
fasttext supervised -input fortunes.train.txt -output sup -dim 16 -epoch 10 -wordNgrams 2 -bucket 20000 -minn 0 -maxn 0 -seed 2 -thread 2 -verbose 0
fasttext quantize -output sup -input fortunes.train.txt -qnorm -retrain -epoch 1 -cutoff 2000 -verbose 0
rm -f sup.vec
/usr/bin/python3 "$BUILD/train_w2v.py" "$BUILD/corpus.txt" . 32 1 2
rm -f w2v.kv*
cat > "$BUILD/queries.json" <<'JSON'
{
 "query_words": ["and","to","you","He","Linux","software","woman","king","Paris","peace","night","kernel","license","x","Ondřej","François","—","(魏銘廷)","©",
                 "sofware","kernle","Lisence","peaceful-ish","Ténéré","naïve","rêve","Ελλάδα","москва","中文字","über","x11x","a","ё","🐧","supercalifragilisticexpialidocious"],
 "sentences": ["The kernel is free software and you can fix it.","Peace and war in Paris at night","Ténéré naïve rêve über kernle","GNU copyright license -- Debian","中文字 ё"],
 "nn_words": ["kernel","peace","woman","Linux","François"],
 "analogies": [["women","woman","man"],["France","Paris","king"],["night","day","life"]],
 "w2v_most_similar": ["kernel","peace","woman","Linux","money","cat","license","the"],
 "w2v_similarity": [["kernel","Linux"],["peace","war"],["woman","man"],["cat","dog"],["day","night"],["love","hate"],["software","package"],["mother","father"],["bug","fix"],["the","a"]],
 "w2v_analogy": [["man","king","woman"],["day","night","life"],["cat","dog","bird"],["good","bad","love"]],
 "w2v_doesnt_match": [["cat","dog","bird","kernel"],["peace","war","love","file"],["Linux","kernel","software","mother"]]
}
JSON
cat > "$BUILD/commands.json" <<'JSON'
{
 "ft.bin": "fasttext skipgram -input ../corpus.txt -output ft -dim 16 -minCount 5 -bucket 20000 -minn 3 -maxn 5 -epoch 3 -thread 2 -seed 2",
 "ft.vec": "written with ft.bin",
 "sup.bin": "fasttext supervised -input fortunes.train.txt -output sup -dim 16 -epoch 10 -wordNgrams 2 -bucket 20000 -minn 0 -maxn 0 -seed 2 -thread 2",
 "sup.ftz": "fasttext quantize -output sup -input fortunes.train.txt -qnorm -retrain -epoch 1 -cutoff 2000",
 "w2v.bin": "/usr/bin/python3 ../train_w2v.py ../corpus.txt . 32 1 2", "w2v.txt": "same as w2v.bin", "glove.txt": "same as w2v.bin",
 "fortunes.train.txt": "/usr/bin/python3 ../make_sup.py . 5 2 people computers politics work science zippy", "fortunes.test.txt": "same as fortunes.train.txt",
 "corpus": "build_corpus.py corpus.txt 2048 (per-file budget 2048 instead of 4096)"
}
JSON
/usr/bin/python3 "$BUILD/make_expected.py" . "$BUILD/queries.json" "$BUILD/commands.json"
