"""Peer of `TransferSharp.Bench heads`: scikit-learn's logistic regression on the same pooled features.

Reads features exported by `transfer extract` (.npy float32 [N, F] + NAME.index.csv with label_index),
fits on the training file, scores on the evaluation file, and prints JSON:
  {"sklearn": version, "rows": [{"name", "seconds", "accuracy", "loss", "C"}...]}
Argument: one JSON object {"train": path.npy, "test": path.npy, "threads": 2}.
Uses Debian's python3-sklearn (apt-get install python3-sklearn).
"""
import csv
import json
import os
import sys
import time

args = json.loads(sys.argv[1])
os.environ.setdefault("OMP_NUM_THREADS", str(args.get("threads", 2)))
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402


def load(path):
    x = np.load(path)
    index = os.path.splitext(path)[0] + ".index.csv"
    with open(index, newline="") as f:
        y = np.array([int(r["label_index"]) for r in csv.DictReader(f)])
    return x.astype(np.float64), y


xtr, ytr = load(args["train"])
xte, yte = load(args["test"])
rows = []


def run(name, model):
    t = time.perf_counter()
    model.fit(xtr, ytr)
    seconds = time.perf_counter() - t
    p = model.predict_proba(xte)
    c = model.C_[0] if hasattr(model, "C_") else model.C
    rows.append({"name": name, "seconds": seconds, "accuracy": float((p.argmax(1) == yte).mean()),
                 "loss": float(log_loss(yte, p, labels=list(range(p.shape[1])))), "C": float(c)})


# The plain baseline a practitioner fits first (defaults except an iteration cap that lets lbfgs converge).
run("LogisticRegression(C=1, lbfgs)", LogisticRegression(C=1.0, max_iter=5000))
# scikit-learn's tuned model: C from its default grid of 10 by 5-fold stratified cross-validation, refit on all.
run("LogisticRegressionCV(Cs=10, cv=5)", LogisticRegressionCV(Cs=10, cv=5, max_iter=5000))
print(json.dumps({"sklearn": sklearn.__version__, "rows": rows}))
