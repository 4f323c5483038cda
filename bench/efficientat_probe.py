#!/usr/bin/env python3
"""EfficientAT mn04 (``as-mn04``) against msd-musicnn: analysis time and linear-probe quality.

Usage (from the repository root, with ``../shared/data`` beside it)::

    python bench/efficientat_probe.py time              # seconds per 4-minute track
    python bench/efficientat_probe.py probe emotify genre
    python bench/efficientat_probe.py probe 4q mood

``time`` writes a synthetic 4-minute MP3 (``tests/audiogen.medley``) under ``.cache/`` and
runs the plugin's ``Analyzer`` (default analysis windows: ``max_patches`` 16,
``window_patches`` 4) with each model in the same process: one warm-up, then the median
of ``--repeats`` runs, split into decode, features and model, and the process's CPU
time (with ``--threads 1`` the least sensitive figure on a shared machine). With 10-s patches the
default windows hear 160 s of a 4-minute track, against musicnn's 48 s, so a third row
runs as-mn04 on 4 windows of one 10-s patch (40 s).

``probe`` embeds every labelled clip with each model exactly as the plugin does (the
training ``FeatureCache`` of ``EmbeddingSource``, cached under ``.cache/efficientat-probe``)
and scores a standardised L2 logistic regression on the clip mean of the patch embeddings
under the protocol of ``docs/results.md``: 5 artist-disjoint folds (seed 0), fold f tests,
fold f + 1 chooses C from 0.001..1, the model is refitted on training + validation.
Prints accuracy and macro-F1 (mean ± std over the test folds) for the 512-d as-mn04
embedding, msd-musicnn's 200-d embedding, and both concatenated; and, for comparison with
``bench/probe_features.py``, the same with C chosen on the test folds (optimistic).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("as-mn04", "msd-musicnn")
CACHE = ROOT / ".cache" / "efficientat-probe"
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def time_analysis(repeats: int, threads: int) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings
    from tests.audiogen import medley, write_audio

    CACHE.mkdir(parents=True, exist_ok=True)
    track = CACHE / "medley-240s.mp3"
    if not track.exists():
        write_audio(track, medley(240.0, sr=44100, channels=2), 44100)
    rows = [
        ("msd-musicnn", 16, 4),
        ("as-mn04", 16, 4),
        ("as-mn04", 4, 1),
    ]
    print(f"{track.name}: 240 s, 44.1 kHz stereo MP3; torch threads {threads}; median of {repeats} runs")
    for model, max_patches, window_patches in rows:
        settings = AnalysisSettings(
            model=model, device="cpu", threads=threads, max_patches=max_patches, window_patches=window_patches
        )
        analyzer = Analyzer(settings)
        analyzer.analyze(track)  # warm-up: first-call allocations, oneDNN primitives
        runs = []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = analyzer.analyze(track)
            runs.append(
                {"total": time.perf_counter() - t0, "cpu": time.process_time() - c0, **result.timings}
            )
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"  {model:<12} windows {max_patches // window_patches} x {window_patches} patches "
            f"({result.analysed:.0f} s heard): total {med['total']:.2f} s = decode {med['decode']:.2f} "
            f"+ features {med['features']:.2f} + model {med['model']:.2f}; CPU time {med['cpu']:.2f} s",
            flush=True,
        )


def clip_embeddings(
    kind: str, task: str, model: str
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """Clip-mean embeddings ``(N, D)``, class indices, artist groups, clip ids and class names."""
    from mcbr_core.training.cache import EmbeddingSource, FeatureCache
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.splits import group_key

    ds = load_dataset(kind, ROOT.parent / "shared" / "data" / kind)
    t = ds.resolve_task(task)
    labels = ds.tasks[t].labels
    clips = ds.labelled(t)
    cache = FeatureCache(EmbeddingSource(model, device="cpu"), root=CACHE, namespace=ds.name)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(
                f"  {model} {kind}: {done}/{total} clips embedded, {time.perf_counter() - t0:.0f} s",
                flush=True,
            )

    keep, failed = cache.prepare(clips, progress=progress)
    if failed:
        print(f"  {model} {kind}: {len(failed)} clips failed, e.g. {failed[0]}")
    x = np.stack([np.asarray(cache.load(c))[0].mean(axis=1) for c in keep])  # (N, D)
    y = np.array([labels.index(c.labels[t][0]) for c in keep])
    return x, y, [group_key(c.artist, c.id) for c in keep], [c.id for c in keep], labels


def probe(kind: str, task: str) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    from mcbr_core.training.splits import grouped_folds

    data = {m: clip_embeddings(kind, task, m) for m in MODELS}
    ids = data[MODELS[0]][3]
    if any(d[3] != ids for d in data.values()):
        common = sorted(set.intersection(*(set(d[3]) for d in data.values())))
        print(f"  clips embedded by every model: {len(common)}")
        data = {m: tuple(_subset(d, common)) for m, d in data.items()}
    _, y, groups, ids, labels = data[MODELS[0]]
    folds = grouped_folds(groups, np.eye(len(labels))[y], 5, seed=0)

    def fit(x: np.ndarray, idx: np.ndarray, c: float) -> tuple[StandardScaler, LogisticRegression]:
        sc = StandardScaler().fit(x[idx])
        return sc, LogisticRegression(C=c, max_iter=5000).fit(sc.transform(x[idx]), y[idx])

    def scores(x: np.ndarray, honest: bool) -> tuple[list[float], list[float]]:
        accs, f1s = [], []
        if not honest:  # one C for all folds, the best on the test folds themselves
            best = max(CS, key=lambda c: np.mean(scores_at(x, c)[1]))
            return scores_at(x, best)
        for f in range(5):
            v = (f + 1) % 5
            tr, va, te = (folds != f) & (folds != v), folds == v, folds == f
            c = max(CS, key=lambda c: f1_score(y[va], _predict(fit(x, tr, c), x[va]), average="macro"))
            p = _predict(fit(x, tr | va, c), x[te])
            accs.append(accuracy_score(y[te], p))
            f1s.append(f1_score(y[te], p, average="macro"))
        return accs, f1s

    def scores_at(x: np.ndarray, c: float) -> tuple[list[float], list[float]]:
        accs, f1s = [], []
        for f in range(5):
            p = _predict(fit(x, folds != f, c), x[folds == f])
            accs.append(accuracy_score(y[folds == f], p))
            f1s.append(f1_score(y[folds == f], p, average="macro"))
        return accs, f1s

    sets = {
        "as-mn04 hidden layer": data["as-mn04"][0],
        "msd-musicnn penultimate": data["msd-musicnn"][0],
        "both concatenated": np.hstack([data["as-mn04"][0], data["msd-musicnn"][0]]),
    }
    print(f"{kind} {task}: {len(y)} clips, {len(labels)} classes, 5 artist-disjoint folds (seed 0)")
    for name, x in sets.items():
        for honest in (True, False):
            accs, f1s = scores(x, honest)
            how = "C on validation fold" if honest else "C on test folds    "
            print(
                f"  {name:<24} {x.shape[1]:>4}-d  {how}  accuracy {np.mean(accs):.3f} ± {np.std(accs):.3f}  "
                f"macro-F1 {np.mean(f1s):.3f} ± {np.std(f1s):.3f}",
                flush=True,
            )


def _subset(d: tuple, keep_ids: list[str]) -> tuple:
    pos = {cid: i for i, cid in enumerate(d[3])}
    idx = [pos[c] for c in keep_ids]
    return d[0][idx], d[1][idx], [d[2][i] for i in idx], keep_ids, d[4]


def _predict(model: tuple, x: np.ndarray) -> np.ndarray:
    sc, lr = model
    return lr.predict(sc.transform(x))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time", help="analysis seconds per 4-minute track")
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p = sub.add_parser("probe", help="logistic-regression probe on the clip embeddings")
    p.add_argument("dataset", choices=["emotify", "4q"])
    p.add_argument("task", choices=["genre", "mood"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.cmd == "time":
        time_analysis(args.repeats, args.threads)
    else:
        probe(args.dataset, args.task)
    return 0


if __name__ == "__main__":
    sys.exit(main())
