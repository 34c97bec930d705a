#!/usr/bin/python3
"""gensim 4.2 peer for the `vectors` bench suite; one measurement per process so peak memory is its own.

usage: gensim_vectors.py load-text GLOVE.txt | load-bin W2V.bin | query W2V.bin QUERIES_JSON
Prints one JSON object: seconds, peak_mb (ru_maxrss), and for `query` the single-query median and batch time."""
import json, resource, sys, time
import numpy as np
from gensim.models import KeyedVectors


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


mode, path = sys.argv[1], sys.argv[2]
out = {'numpy': np.__version__}
try:
    import numpy.distutils.system_info  # noqa: F401
except Exception:
    pass
t = time.perf_counter()
if mode == 'load-text':
    kv = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
elif mode in ('load-bin', 'query'):
    kv = KeyedVectors.load_word2vec_format(path, binary=True)
else:
    raise SystemExit(f'unknown mode {mode}')
out['load_seconds'] = time.perf_counter() - t
out['load_peak_mb'] = peak_mb()
out['count'] = len(kv)
if mode == 'query':
    q = json.loads(sys.argv[3])
    single, batch, topn = q['single'], q['batch'], q['topn']
    kv.fill_norms()
    kv.most_similar(single[0], topn=topn)  # warm-up
    times = []
    for w in single:
        t = time.perf_counter()
        kv.most_similar(w, topn=topn)
        times.append(time.perf_counter() - t)
    out['single_median_seconds'] = float(np.median(times))
    t = time.perf_counter()
    answers = [kv.most_similar(w, topn=topn) for w in batch]
    out['batch_seconds'] = time.perf_counter() - t
    out['batch_first'] = [w for w, _ in answers[0]]
    out['query_peak_mb'] = peak_mb()
print(json.dumps(out))
