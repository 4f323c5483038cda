#!/usr/bin/env python3
"""Which pretrained musicnn features make the best clip-level probe? (exploration for issue 3)

Usage::

    python bench/probe_features.py ../shared/data --dataset emotify --task genre
    python bench/probe_features.py ../shared/data --dataset 4q --task mood

For every clip (whole clip, non-overlapping 3-s patches) it runs both shipped
musicnn models and keeps, averaged over patches (and their standard deviation):
the 200-d penultimate embedding, the 50 tag probabilities, and the 1506-d pooled
front/mid-end features. Features are cached in ``--cache`` (``.npz``). Each feature
set is scored with a standardised L2 logistic regression (C chosen from 1e-3..1e-1
on the same folds, so the figures are slightly optimistic) under 5-fold
artist-disjoint cross-validation (``mcbr_core.training.splits.grouped_folds``).
Prints macro-F1 and accuracy per feature set.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def extract(kind: str, root: Path, out: Path) -> None:
    import torch

    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio
    from mcbr_core.features.musicnn_mel import MusicnnMel
    from mcbr_core.features.patches import patches
    from mcbr_core.models.musicnn import Musicnn, load_musicnn
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.training.datasets.builtin import load_dataset

    nets = {name[:3]: load_musicnn(resolve_model(name))[0] for name in ("msd-musicnn", "mtt-musicnn")}

    def run(net: Musicnn, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = net.pooled(x)  # (B, 1506)
        emb = net.embed_pooled(pooled)  # (B, 200)
        return pooled, emb, torch.sigmoid(net.out(emb))

    ds = load_dataset(kind, root)
    mel, decoders = MusicnnMel(), [SoundfileDecoder(), PyAVDecoder()]
    rows: dict[str, list] = {"ids": [], "artists": []}
    t0 = time.perf_counter()
    for i, clip in enumerate(ds.clips):
        y = load_audio(clip.path, sr=16000, decoders=decoders)
        x = torch.from_numpy(patches(mel(y), patch_frames=187, hop=187))  # (B, 1, 96, 187)
        rows["ids"].append(clip.id)
        rows["artists"].append(clip.artist or clip.id)
        with torch.inference_mode():
            for pre, net in nets.items():
                for key, value in zip(("pool", "emb", "prob"), run(net, x), strict=True):
                    v = value.numpy()
                    rows.setdefault(f"{pre}_{key}", []).append(np.concatenate([v.mean(0), v.std(0)]))
        if i % 100 == 0:
            print(f"{kind}: {i}/{len(ds.clips)} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    np.savez(out, **{k: np.array(v) for k, v in rows.items()})


def score(kind: str, root: Path, task: str, cache: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.splits import grouped_folds

    d = np.load(cache)
    ds = load_dataset(kind, root)
    labels = {c.id: c.labels[task][0] for c in ds.clips if c.labels.get(task)}
    keep = [i for i, cid in enumerate(d["ids"]) if cid in labels]
    y_names = [labels[d["ids"][i]] for i in keep]
    classes = sorted(set(y_names))
    y = np.array([classes.index(v) for v in y_names])
    folds = grouped_folds([d["artists"][i] for i in keep], np.eye(len(classes))[y], 5, seed=0)

    def cv(x: np.ndarray, c: float) -> tuple[float, float]:
        f1, acc = [], []
        for k in range(5):
            tr, te = folds != k, folds == k
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
            model.fit(x[tr], y[tr])
            p = model.predict(x[te])
            f1.append(f1_score(y[te], p, average="macro"))
            acc.append(accuracy_score(y[te], p))
        return float(np.mean(f1)), float(np.mean(acc))

    f = {k: d[k][keep] for k in d.files if k not in ("ids", "artists")}
    sets = {
        "msd embedding (mean)": f["msd_emb"][:, :200],
        "msd embedding (mean+std)": f["msd_emb"],
        "msd pooled": f["msd_pool"],
        "mtt embedding": f["mtt_emb"],
        "msd+mtt embeddings": np.hstack([f["msd_emb"], f["mtt_emb"]]),
        "msd+mtt embeddings+tags": np.hstack([f["msd_emb"], f["mtt_emb"], f["msd_prob"], f["mtt_prob"]]),
        "msd+mtt pooled": np.hstack([f["msd_pool"], f["mtt_pool"]]),
    }
    print(f"{kind} {task}: {len(y)} clips, {len(classes)} classes, 5 artist-disjoint folds")
    for name, x in sets.items():
        (f1, acc), c = max(((cv(x, c), c) for c in (0.001, 0.01, 0.1)), key=lambda r: r[0][0])
        print(f"  {name:<26} {x.shape[1]:>5}-d  macro-F1 {f1:.3f}  accuracy {acc:.3f}  (C={c})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("--dataset", default="emotify")
    parser.add_argument("--task", default="genre")
    parser.add_argument("--cache", type=Path, default=Path(".cache/probe-features"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    args.cache.mkdir(parents=True, exist_ok=True)
    cache = args.cache / f"{args.dataset}.npz"
    if not cache.exists():
        extract(args.dataset, args.data / args.dataset, cache)
    score(args.dataset, args.data / args.dataset, args.task, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
