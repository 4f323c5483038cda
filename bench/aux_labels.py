#!/usr/bin/env python3
"""Do 4Q's AllMusic mood and genre tags help the mood head as auxiliary targets? (issue 3)

Usage::

    python bench/aux_labels.py ../shared/data

4Q's quadrants were derived from AllMusic mood tags (207 of them here, about 6 per
clip). This script asks whether those tags, known only for the training clips, give
the clip head a better view of the embedding: on each fold's training part a ridge
regression maps the standardised msd-musicnn clip embedding to the mood (or mood +
genre) tags, and the logistic regression reads the predicted tags, alone or next to
the embedding. At inference only the audio is needed.

Protocol as ``mcbr train --mode head --folds 5``: the same 5 artist-disjoint folds,
C chosen on the validation fold from 0.001-1, refitted on training + validation
(the ridge too). Reads msd-musicnn's per-patch embeddings of the plugin's analysis
windows from the training feature cache (computed on first use).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

C_GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
Features = Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]  # training rows -> (rows -> features)


def main(data: Path) -> None:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    from mcbr_core.training.cache import EmbeddingSource, FeatureCache
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.splits import group_key, grouped_folds

    warnings.filterwarnings("ignore")
    ds = load_dataset("4q", data / "4q")
    cache = FeatureCache(EmbeddingSource("msd-musicnn", device="cpu"), namespace=ds.name)
    clips, _ = cache.prepare(ds.labelled("mood"))
    X = np.stack([np.asarray(cache.load(c))[0].mean(axis=1) for c in clips])  # (n, 200) clip means
    labels = list(ds.tasks["mood"].labels)
    y = np.array([labels.index(c.labels["mood"][0]) for c in clips])

    def multi_hot(task: str) -> np.ndarray:
        names = ds.tasks[task].labels
        return np.array([[float(n in c.labels.get(task, ())) for n in names] for c in clips])  # (n, K)

    moods, genres = multi_hot("moods"), multi_hot("genres")
    folds = grouped_folds([group_key(c.artist, c.id) for c in clips], np.eye(len(labels))[y], 5, seed=0)

    def plain(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda rows: X[rows]

    def via_tags(Y: np.ndarray, alpha: float, *, with_embedding: bool) -> Features:
        def fit(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            sc = StandardScaler().fit(X[train])
            ridge = Ridge(alpha=alpha).fit(sc.transform(X[train]), Y[train])

            def features(rows: np.ndarray) -> np.ndarray:
                tags = ridge.predict(sc.transform(X[rows]))  # (m, K) predicted tag profile
                return np.hstack([X[rows], tags]) if with_embedding else tags

            return features

        return fit

    def cv(features: Features) -> str:
        scores = []
        for f in range(5):
            v = (f + 1) % 5
            tr, va, te = (folds != f) & (folds != v), folds == v, folds == f

            def fit(rows: np.ndarray, C: float):
                feats = features(rows)
                sc = StandardScaler().fit(feats(rows))
                model = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(feats(rows)), y[rows])
                return lambda r: model.predict(sc.transform(feats(r)))

            best = max(C_GRID, key=lambda C: f1_score(y[va], fit(tr, C)(va), average="macro"))
            scores.append(f1_score(y[te], fit(tr | va, best)(te), average="macro"))
        return f"{np.mean(scores):.3f} ± {np.std(scores):.3f}"

    print(f"4Q: {len(clips)} clips, {moods.shape[1]} AllMusic moods ({moods.sum(1).mean():.1f} per clip), "
          f"{genres.shape[1]} genres")  # fmt: skip
    print("| features of the logistic regression | 4Q macro-F1 |\n|---|---:|")
    print(f"| clip embedding (the shipped head) | {cv(plain)} |", flush=True)
    for alpha in (10.0, 100.0, 1000.0):
        print(f"| embedding + predicted mood tags (ridge alpha {alpha:g}) | "
              f"{cv(via_tags(moods, alpha, with_embedding=True))} |", flush=True)  # fmt: skip
        print(f"| predicted mood tags only (ridge alpha {alpha:g}) | "
              f"{cv(via_tags(moods, alpha, with_embedding=False))} |", flush=True)  # fmt: skip
    both = np.hstack([moods, genres])
    print(
        f"| embedding + predicted mood and genre tags (alpha 100) | {cv(via_tags(both, 100.0, with_embedding=True))} |"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
