#!/bin/bash
# Small fastText classifiers for the losses and options the reference set does not cover (hierarchical softmax,
# one-vs-all with character n-grams and its quantized twin, a quantized model with a quantized output matrix — which
# needs at least 256 labels, so its labels are synthetic: line number mod 300), and what Debian's
# fasttext 0.9.2 answers for them. Run from this directory; needs ../../../../../shared/reference/embeddings.
set -euo pipefail
REF=$(cd ../../../../../shared/reference/embeddings && pwd)
T=$(mktemp -d)
head -n 800 "$REF/fortunes.train.txt" > "$T/train.txt"
sed -n '1,25p' "$REF/fortunes.test.txt" > "$T/test.txt"
awk '{ sub(/^__label__[a-z]+ /, ""); print "__label__L" (NR % 300) " " $0 }' "$REF/fortunes.train.txt" > "$T/many.txt"
fasttext supervised -input "$T/train.txt" -output hs -dim 8 -epoch 5 -minCount 3 -wordNgrams 2 -bucket 2000 -minn 0 -maxn 0 -loss hs -thread 1 -seed 1 -verbose 0
fasttext supervised -input "$T/train.txt" -output ova -dim 8 -epoch 5 -minCount 3 -wordNgrams 1 -bucket 2000 -minn 3 -maxn 5 -loss ova -thread 1 -seed 1 -verbose 0
fasttext quantize -input "$T/train.txt" -output ova -qnorm -cutoff 600 -retrain -epoch 1 -thread 1 -verbose 0
fasttext supervised -input "$T/many.txt" -output qout -dim 8 -epoch 2 -minCount 3 -wordNgrams 1 -bucket 1000 -minn 0 -maxn 0 -thread 1 -seed 1 -verbose 0
fasttext quantize -input "$T/many.txt" -output qout -qnorm -qout -cutoff 400 -thread 1 -verbose 0
rm -f hs.vec ova.vec qout.vec qout.bin
/usr/bin/python3 - "$T/test.txt" <<'PY'
import json, subprocess, sys
import numpy as np, fasttext
fasttext.FastText.eprint = lambda *a, **k: None
texts = [l.rstrip('\n').split(' ', 1)[1] for l in open(sys.argv[1], encoding='utf-8')]
out = {'texts': texts, 'models': {}}
for name in ['hs.bin', 'ova.bin', 'ova.ftz', 'qout.ftz']:
    m = fasttext.load_model(name)
    cli = subprocess.run(['fasttext', 'predict-prob', name, '-', '3'], input=('\n'.join(texts) + '\n').encode(), capture_output=True, check=True).stdout.decode().split('\n')
    rows = []
    for t, line in zip(texts, cli):
        labels, probs = m.predict(t, k=3)
        toks = line.split(' ')
        assert list(labels) == toks[0::2], (labels, line)
        rows.append([{'label': l, 'prob': float(np.float32(p)), 'prob_cli': float(c)} for l, p, c in zip(labels, probs, toks[1::2])])
    sv = [float(x) for x in m.get_sentence_vector(texts[0])]
    out['models'][name] = {'loss': str(m.f.getArgs().loss).split('.')[-1], 'predictions': rows, 'sentence_vector_0': sv}
json.dump(out, open('losses_expected.json', 'w'), ensure_ascii=False, indent=1)
PY
rm -rf "$T"
ls -la hs.bin ova.bin ova.ftz qout.ftz losses_expected.json
