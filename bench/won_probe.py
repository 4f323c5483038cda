#!/usr/bin/env python3
"""Won et al.'s taggers against msd-musicnn: speed, linear probes and zero-shot genre (issue 13).

Usage (from the repository root, with ``../shared/data`` beside it)::

    python tools/convert_won.py --models all --out .cache/won-models   # the unshipped ones too
    python bench/won_probe.py ../shared/data extract --dataset emotify
    python bench/won_probe.py ../shared/data extract --dataset 4q
    python bench/won_probe.py ../shared/data score
    python bench/won_probe.py ../shared/data timing

``extract`` runs each model on every clip of Emotify and 4Q (``--every N``: every
N-th clip only) exactly as the plugin does (``EmbeddingSource``: the
``Analyzer`` with the default windows; 29-s patches for FCN and CRNN, 3-s ones for
the musicnns, a shorter clip repeated to fill one) and caches the per-patch
penultimate vectors in the training ``FeatureCache`` under ``.cache/tag-sources``,
the cache ``bench/tag_sources.py`` fills too, so neither computes a model twice.

``score`` takes, for every model, the clip mean of the penultimate vectors and of
the tag probabilities (``sigmoid`` of the linear tag layer on each cached vector),
on the clips cached for every model, and prints:

* a standardised L2 logistic regression on the clip embedding under 5-fold
  artist-disjoint cross-validation (``mcbr_core.training.splits.grouped_folds``,
  seed 0; C chosen from 0.001..1 on the next fold and the model refitted on training
  + validation, as ``bench/efficientat_probe.py`` and ``docs/results.md`` do): Emotify
  genre and 4Q quadrant accuracy / macro-F1, mean ± standard deviation over the folds;
  also each Won embedding concatenated with msd-musicnn's;
* zero-shot Emotify genre accuracy: the model's own genre tags mapped onto Emotify's
  four genres (``JAMENDO_TO_EMOTIFY``, ``MSD_TO_EMOTIFY``; a genre's score is the
  highest probability among its tags). MSD's Last.fm tags have no classical tag, so
  an MSD model never predicts classical (a quarter of Emotify).

``timing`` analyses a 4-minute track (a real Emotify clip repeated to 240 s, written
to a temporary FLAC) with each model through ``mcbr_core.analysis.Analyzer``, with
the default analysis windows (``--max-patches 16 --window-patches 4``) or others,
one torch thread (``--threads``), five rounds interleaved (``--rounds``), and prints
the fastest round per model, with its CPU time (the firmer figure on a shared machine).
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

WON = ("jamendo-fcn", "msd-fcn", "jamendo-crnn", "msd-crnn", "jamendo-musicnn")
MODELS = (*WON, "msd-musicnn")
EMOTIFY = ("classical", "electronic", "pop", "rock")
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # L2 strengths the probe chooses from

#: Each model's genre tags that name one of Emotify's genres (zero-shot mapping)
JAMENDO_TO_EMOTIFY = {
    "classical": ("classical", "orchestral"),
    "electronic": ("electronic", "techno", "trance", "house", "dance", "trip hop", "downtempo", "ambient"),
    "pop": ("pop", "pop folk", "instrumental pop"),
    "rock": ("rock", "pop rock", "metal", "alternative", "indie"),
}
MSD_TO_EMOTIFY = {
    "classical": (),  # Last.fm's top 50 have no classical tag
    "electronic": ("electronic", "electronica", "electro", "dance", "House", "ambient"),
    "pop": ("pop", "indie pop"),
    "rock": ("rock", "alternative rock", "classic rock", "hard rock", "indie rock", "metal", "heavy metal",
             "punk", "Progressive rock", "alternative", "indie"),
}  # fmt: skip


def model_path(name: str, folder: Path) -> Path:
    """A shipped model by name, else ``folder/<name>.safetensors`` (from ``tools/convert_won.py``)."""
    from mcbr_core.models.shipped import shipped_models

    return shipped_models().get(name) or folder / f"{name}.safetensors"


def _cache(name: str, folder: Path, kind: str, cache: Path):  # -> FeatureCache
    """The per-patch embedding cache of model ``name`` on dataset ``kind`` (shared with bench/tag_sources.py)."""
    from mcbr_core.training.cache import EmbeddingSource, FeatureCache

    source = EmbeddingSource(str(model_path(name, folder)), device="cpu")
    return FeatureCache(source, root=cache, namespace=kind)


def _clips(kind: str, root: Path, every: int) -> list:
    from mcbr_core.training.datasets.builtin import load_dataset

    return load_dataset(kind, root).clips[::every]


def extract(kind: str, root: Path, cache: Path, folder: Path, models: list[str], every: int) -> None:
    """Cache the per-patch penultimate vectors of every clip, one model after the other."""
    import torch

    torch.set_num_threads(1)  # the machine is shared: one thread wastes the least under load
    clips = _clips(kind, root, every)
    for name in models:
        fc = _cache(name, folder, kind, cache)
        t0 = time.perf_counter()

        def progress(i: int, n: int, t0: float = t0, name: str = name) -> None:
            if i % 25 == 0 or i == n:
                print(f"{name} {kind}: {i}/{n} computed ({time.perf_counter() - t0:.0f} s)", flush=True)

        ok, failed = fc.prepare(clips, progress=progress)
        print(f"{name} {kind}: {len(ok)} cached, {len(failed)} failed -> {fc.dir}", flush=True)


def clip_vectors(
    name: str, folder: Path, kind: str, cache: Path, clips: list
) -> tuple[np.ndarray, np.ndarray]:
    """Clip means of the penultimate vectors ``(N, D)`` and of the tag probabilities ``(N, 50)``.

    The tag layer is linear on the penultimate vector in every model here, so the
    per-patch probabilities are ``sigmoid(W e + b)`` of the cached vectors.
    """
    import torch

    from mcbr_core.models.musicnn import load_musicnn
    from mcbr_core.models.won import load_won

    net = (load_musicnn if name == "msd-musicnn" else load_won)(model_path(name, folder))[0]
    head = net.out if name == "msd-musicnn" else net.dense
    fc = _cache(name, folder, kind, cache)
    emb, prob = [], []
    for clip in clips:
        e = torch.from_numpy(np.array(fc.load(clip))[0].T)  # (1, D, B) -> (B, D)
        with torch.inference_mode():
            prob.append(torch.sigmoid(head(e)).mean(0).numpy())
        emb.append(e.mean(0).numpy())
    return np.stack(emb), np.stack(prob)


def _cv(x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-fold accuracy and macro-F1 of a standardised L2 logistic regression.

    For test fold ``f``, C is chosen on fold ``f + 1`` (trained on the other three) and
    the model refitted on all four, as ``bench/efficientat_probe.py`` and
    ``docs/results.md`` do.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    def fit_predict(train: np.ndarray, test: np.ndarray, c: float) -> np.ndarray:
        sc = StandardScaler().fit(x[train])
        lr = LogisticRegression(C=c, max_iter=5000).fit(sc.transform(x[train]), y[train])
        return lr.predict(sc.transform(x[test]))

    k = int(folds.max()) + 1
    accs, f1s = [], []
    for f in range(k):
        v = (f + 1) % k
        tr, va, te = (folds != f) & (folds != v), folds == v, folds == f
        c = max(CS, key=lambda c: f1_score(y[va], fit_predict(tr, va, c), average="macro"))
        p = fit_predict(tr | va, te, c)
        accs.append(float(accuracy_score(y[te], p)))
        f1s.append(float(f1_score(y[te], p, average="macro")))
    return accs, f1s


def _labels(clips: list, task: str) -> tuple[list, np.ndarray, list[str]]:
    keep = [c for c in clips if c.labels.get(task)]
    classes = sorted({c.labels[task][0] for c in keep})
    return keep, np.array([classes.index(c.labels[task][0]) for c in keep]), classes


def zero_shot(probs: np.ndarray, tags: list[str], mapping: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Emotify genre index per clip: the genre whose mapped tags hold the highest probability."""
    scores = np.zeros((len(probs), len(EMOTIFY)))
    for j, genre in enumerate(EMOTIFY):
        cols = [tags.index(t) for t in mapping[genre]]
        if cols:
            scores[:, j] = probs[:, cols].max(axis=1)
    return scores.argmax(axis=1)


def score(data: Path, cache: Path, folder: Path, models: list[str], every: dict[str, int]) -> None:
    """Print the probes and the zero-shot accuracy of every model, on the clips cached for all of them."""
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.training.splits import group_key, grouped_folds

    res: dict[str, dict[str, str]] = {m: {} for m in models}
    for kind, task in (("emotify", "genre"), ("4q", "quadrant")):
        clips, y, classes = _labels(_clips(kind, data / kind, every[kind]), task)
        caches = {m: _cache(m, folder, kind, cache) for m in models}
        have = [i for i, c in enumerate(clips) if all(fc.path(c).exists() for fc in caches.values())]
        if not have:
            continue
        clips, y = [clips[i] for i in have], y[have]
        groups = [group_key(c.artist, c.id) for c in clips]
        folds = grouped_folds(groups, np.eye(len(classes))[y], 5, seed=0)
        embs = {}
        for m in models:
            emb, prob = clip_vectors(m, folder, kind, cache, clips)
            embs[m] = emb
            if kind == "emotify":
                assert classes == list(EMOTIFY), classes
                tags = read_card(model_path(m, folder))["heads"]["tags"]
                mapping = JAMENDO_TO_EMOTIFY if m.startswith("jamendo") else MSD_TO_EMOTIFY
                res[m]["zero"] = f"{float((zero_shot(prob, tags, mapping) == y).mean()):.3f}"
        if "msd-musicnn" in embs:  # each Won embedding beside msd-musicnn's (concatenated)
            for m in [m for m in models if m != "msd-musicnn"]:
                embs[f"msd-musicnn + {m}"] = np.hstack([embs["msd-musicnn"], embs[m]])
        for m, emb in embs.items():
            accs, f1s = _cv(emb, y, folds)
            row = res.setdefault(m, {})
            row["dim"] = str(emb.shape[1])
            row[kind] = f"{np.mean(accs):.3f} ± {np.std(accs):.3f} / {np.mean(f1s):.3f} ± {np.std(f1s):.3f}"
            row[f"{kind}_n"] = str(len(y))
    print(
        "logistic regression on the clip embedding, 5-fold artist-disjoint CV: accuracy / macro-F1 (mean ± std)"
    )
    print(f"{'model':<30} {'dim':>4}  {'Emotify genre':<38} {'4Q quadrant':<38} zero-shot Emotify genre acc")
    for m, r in res.items():
        e = f"{r.get('emotify', '-')} (n={r.get('emotify_n', 0)})"
        q = f"{r.get('4q', '-')} (n={r.get('4q_n', 0)})"
        print(f"{m:<30} {r.get('dim', '-'):>4}  {e:<38} {q:<38} {r.get('zero', '-')}")


def timing(
    data: Path, folder: Path, models: list[str], windows: tuple[int, int], threads: int, rounds: int
) -> None:
    """Print the fastest of ``rounds`` analyses of a 4-minute track per model."""
    import tempfile

    import soundfile as sf

    from mcbr_core.analysis import Analyzer
    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio
    from mcbr_core.settings import AnalysisSettings

    y = load_audio(
        data / "emotify/emotifymusic/rock/10.mp3", sr=44100, decoders=[SoundfileDecoder(), PyAVDecoder()]
    )
    with tempfile.TemporaryDirectory() as tmp:
        track = Path(tmp) / "four-minutes.flac"
        sf.write(track, np.resize(y, 240 * 44100), 44100)
        max_patches, window_patches = windows
        analyzers = {
            m: Analyzer(AnalysisSettings(model=str(model_path(m, folder)), device="cpu", threads=threads,
                                         max_patches=max_patches, window_patches=window_patches))
            for m in models
        }  # fmt: skip
        best: dict[str, tuple[float, dict[str, float], int, float]] = {}
        for _ in range(rounds):
            for m, a in analyzers.items():
                t0, c0 = time.perf_counter(), time.process_time()
                r = a.analyze(track)
                total, cpu = time.perf_counter() - t0, time.process_time() - c0
                if m not in best or total < best[m][0]:
                    best[m] = (total, r.timings, round(r.analysed / a.patch_seconds()), cpu)
    print(f"4-minute track, max_patches {max_patches}, window_patches {window_patches}, best of {rounds} "
          f"(CPU, torch threads: "
          f"{__import__('torch').get_num_threads()})")  # fmt: skip
    for m, (total, t, n, cpu) in best.items():
        print(f"  {m:<16} {total:6.2f} s  ({n} patches; decode {t['decode']:.2f} s, features {t['features']:.2f} s, "
              f"model {t['model']:.2f} s; CPU {cpu:.2f} s)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("step", choices=("extract", "score", "timing"))
    parser.add_argument("--dataset", default="emotify", choices=("emotify", "4q"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all six)")
    parser.add_argument("--every", type=int, default=1, help="every N-th clip only (default: all)")
    parser.add_argument("--max-patches", type=int, default=16, help="timing: analysis windows (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="timing: torch threads (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="timing: rounds, the fastest counts (default 5)"
    )
    parser.add_argument(
        "--window-patches", type=int, default=4, help="timing: patches per window (default 4)"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "tag-sources",
                        help="per-patch embedding cache (shared with bench/tag_sources.py)")  # fmt: skip
    parser.add_argument(
        "--models-dir", type=Path, default=ROOT / ".cache" / "won-models",
        help="unshipped converted models (tools/convert_won.py --models all --out DIR)",
    )  # fmt: skip
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}")
    warnings.filterwarnings("ignore", category=FutureWarning)
    args.cache.mkdir(parents=True, exist_ok=True)
    every = {"emotify": args.every, "4q": args.every}
    if args.step == "extract":
        extract(
            args.dataset, args.data / args.dataset, args.cache, args.models_dir, models, every[args.dataset]
        )
    elif args.step == "score":
        score(args.data, args.cache, args.models_dir, models, every)
    else:
        windows = (args.max_patches, args.window_patches)
        timing(args.data, args.models_dir, models, windows, args.threads, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
