#!/usr/bin/env python3
"""Does a richer pooling of msd-musicnn's patch embeddings help the clip heads? (issue 3)

Usage::

    python bench/head_pooling.py emotify genre
    python bench/head_pooling.py 4q mood

Reads the training feature cache of msd-musicnn's per-patch embeddings (the plugin's
analysis windows: 16 patches in 4 windows; filled by ``mcbr train --mode head``), and
scores a standardised L2 logistic regression under the same 5 artist-disjoint folds as
``mcbr train --folds 5`` (C chosen on the validation fold, refitted on training +
validation) on: the clip mean (what the shipped heads read), the mean with window
means as extra training samples, mean + max, and mean + std. Run from the
repository root, with ``../shared/data`` beside it.
"""

import sys
import warnings

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler

from mcbr_core.training.cache import EmbeddingSource, FeatureCache
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.splits import group_key, grouped_folds

warnings.filterwarnings("ignore")
if len(sys.argv) != 3 or sys.argv[1].startswith("-"):
    sys.exit(__doc__)
kind, task = sys.argv[1], sys.argv[2]
ds = load_dataset(kind, Path(f"../shared/data/{kind}"))
t = ds.resolve_task(task)
info = ds.tasks[t]
clips = ds.labelled(t)
ce = FeatureCache(EmbeddingSource("msd-musicnn", device="cpu"), namespace=ds.name)
keep, _ = ce.prepare(clips)
P = [np.asarray(ce.load(c))[0] for c in keep]  # (200, n_patches)
print(kind, len(keep), "patches per clip", np.bincount([p.shape[1] for p in P]).nonzero()[0], flush=True)
mean = np.stack([p.mean(1) for p in P])
mx = np.stack([p.max(1) for p in P])
sd = np.stack([p.std(1) for p in P])
labels = info.labels
y = np.array([labels.index(c.labels[t][0]) for c in keep])
groups = [group_key(c.artist, c.id) for c in keep]
folds = grouped_folds(groups, np.eye(len(labels))[y], 5, seed=0)
Cs = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1]


def cv(X, aug=False):
    f1s, accs = [], []
    for f in range(5):
        v = (f + 1) % 5
        tr = (folds != f) & (folds != v)
        va = folds == v
        te = folds == f

        def fit(idx, C):
            if aug:  # window means (4 patches each) as extra samples
                Xs = [X[idx]]
                ys = [y[idx]]
                for w in range(4):
                    Xs.append(
                        np.stack(
                            [
                                P[i][:, w * 4 : (w + 1) * 4].mean(1)
                                if P[i].shape[1] > w * 4
                                else P[i].mean(1)
                                for i in np.flatnonzero(idx)
                            ]
                        )
                    )
                    ys.append(y[idx])
                Xa = np.vstack(Xs)
                ya = np.concatenate(ys)
            else:
                Xa, ya = X[idx], y[idx]
            sc = StandardScaler().fit(Xa)
            return sc, LogisticRegression(C=C, max_iter=3000).fit(sc.transform(Xa), ya)

        best = max(
            (
                (f1_score(y[va], m.predict(sc.transform(X[va])), average="macro"), C)
                for C in Cs
                for sc, m in [fit(tr, C)]
            )
        )
        sc, m = fit(tr | va, best[1])
        p = m.predict(sc.transform(X[te]))
        f1s.append(f1_score(y[te], p, average="macro"))
        accs.append(accuracy_score(y[te], p))
    return f"f1 {np.mean(f1s):.3f}±{np.std(f1s):.3f} acc {np.mean(accs):.3f}"


print("mean", cv(mean), flush=True)
print("mean+aug", cv(mean, aug=True), flush=True)
print("mean+max", cv(np.hstack([mean, mx])), flush=True)
print("mean+sd", cv(np.hstack([mean, sd])), flush=True)
