"""Timing shared by the Python peers: the median of timed runs after warm-up ones, as BenchUtil.MedianSeconds does."""
import time

def median_seconds(fn, warmup=2, repeats=5):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]
