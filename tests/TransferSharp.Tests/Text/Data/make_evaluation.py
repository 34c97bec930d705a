#!/usr/bin/python3
"""Analogy and word-pair files over the reference w2v.bin vocabulary, and gensim 4.2's evaluation of them.

usage: /usr/bin/python3 make_evaluation.py [REFERENCE_DIR]   (default ../../../../../shared/reference/embeddings)
Writes analogies.txt, pairs.tsv and evaluation_expected.json here. The questions are built from the model itself
(half answered by its own top 3CosAdd answer, so some are right, half with a random fourth word), upper-cased or
title-cased at random to exercise case folding, with out-of-vocabulary questions, lines without four words and an
empty section; the pairs file has comments, out-of-vocabulary pairs, a malformed line and tied gold scores."""
import json, os, random, sys
import numpy as np
from gensim.models import KeyedVectors

ref = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../../../shared/reference/embeddings')
kv = KeyedVectors.load_word2vec_format(os.path.join(ref, 'w2v.bin'), binary=True)
rng = random.Random(7)
words = [w for w in kv.index_to_key[:3000] if w.isalpha()]

def casing(w):
    r = rng.random()
    return w.upper() if r < 0.2 else w.title() if r < 0.4 else w

lines = []
for s in range(3):
    lines.append(f': section-{s}')
    for q in range(40):
        a, b, c = rng.sample(words, 3)
        if q % 2 == 0:
            d = kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
        else:
            d = rng.choice(words)
        lines.append(' '.join(casing(w) for w in (a, b, c, d)))
    lines.append(f'{words[s]} {words[s + 1]} zzzunknownword {words[s + 2]}')
    lines.append(f'{words[s]} {words[s + 1]} {words[s + 2]}')
lines.append(': empty-section')
lines.append(': last')
lines.append('straße Straße STRASSE strasse')
for q in range(10):
    a, b, c = rng.sample(words[:200], 3)
    d = kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
    lines.append(f'{a} {b} {c} {d}')
with open('analogies.txt', 'w', encoding='utf-8', newline='\n') as f:
    f.write('\n'.join(lines) + '\n')

pairs = ['# word1\tword2\tscore (synthetic)', '']
for i in range(60):
    a, b = rng.sample(words, 2)
    pairs.append(f'{casing(a)}\t{casing(b)}\t{rng.choice([1.0, 2.5, 5.0, 7.25, 10.0, rng.uniform(0, 10)]):.2f}')
pairs.append('computer\tnotawordxyz\t3.0')
pairs.append('malformed line without tabs')
pairs.append('a\tb\tnot-a-number')
with open('pairs.tsv', 'w', encoding='utf-8', newline='\n') as f:
    f.write('\n'.join(pairs) + '\n')

def analogy_result(**kw):
    score, sections = kv.evaluate_word_analogies('analogies.txt', **kw)
    return {'options': kw, 'score': score,
            'sections': [{'section': s['section'], 'correct': [list(q) for q in s['correct']], 'incorrect': [list(q) for q in s['incorrect']]} for s in sections]}

def pairs_result(**kw):
    pearson, spearman, oov = kv.evaluate_word_pairs('pairs.tsv', **kw)
    return {'options': kw, 'pearson': [float(pearson[0]), float(pearson[1])],
            'spearman': [float(spearman[0]), float(spearman[1])], 'oov_ratio': float(oov)}

expected = {
    'model': 'w2v.bin',
    'analogies': [analogy_result(), analogy_result(restrict_vocab=1500, case_insensitive=False, dummy4unknown=True)],
    'pairs': [pairs_result(), pairs_result(restrict_vocab=2000, case_insensitive=False, dummy4unknown=True)],
}
json.dump(expected, open('evaluation_expected.json', 'w'), ensure_ascii=False, indent=1)
for a in expected['analogies']: print('analogies', a['options'], a['score'], [(s['section'], len(s['correct']), len(s['incorrect'])) for s in a['sections']])
for p in expected['pairs']: print('pairs', p)
