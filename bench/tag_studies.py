"""The studies of ``bench/tag_sources.py`` beyond its rows of embeddings: the Pop/Rock split, timing, the table
and its markdown, Emotify's GEMS moods as mood labels, and re-keying the cache (docs/results.md, "Tags: sources
and heads"). Run them through ``bench/tag_sources.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tag_protocol import C_GRID, _fit_predict, _score, folds_of
from tag_sources import CACHE, Study, _fmt, _Key, fusion_file, model_ref, run_row, zero_row


def poprock_row(st: Study, sources: tuple[str, ...], strategy: str) -> dict[str, object]:
    """The genre head with 4Q's Pop/Rock clips labelled by ``strategy``: ``both``, ``zero:<tagger>`` (the
    tagger's pop or rock, whichever scores higher) or ``emotify`` (a pop-vs-rock head fitted, per fold, on the
    Emotify pop and rock clips outside the test fold). Same folds and protocol as :func:`run_row`."""
    X, ok = st.features(sources)
    idx, Y0, _ = st.task("genres")
    if not ok[idx].all():
        raise SystemExit("not every clip is cached")
    folds = folds_of(st.ds, idx, Y0)  # the folds of the "both" targets, for every strategy
    g = st.genres
    ip, ir = g.index("pop"), g.index("rock")
    fams = [st.ds.clips[i].extra["source_labels"].get("genres", ()) for i in idx]
    poprock = np.array([st.kind[i] == "4q" and "Pop/Rock" in f for i, f in zip(idx, fams, strict=True)])
    truth = np.array([st.ds.clips[i].labels["genres"][0] for i in idx])
    emo_pr = (st.kind[idx] == "emotify") & np.isin(truth, ("pop", "rock"))
    P = np.zeros(Y0.shape)
    chosen = []
    for f in range(5):
        v = (f + 1) % 5
        train, val, test = (np.flatnonzero((folds != f) & (folds != v)), np.flatnonzero(folds == v),
                            np.flatnonzero(folds == f))  # fmt: skip
        Y = Y0.copy()
        if strategy.startswith("zero:"):
            Z = st.zero_genres(strategy.split(":", 1)[1])[idx]
            rock = Z[:, ir] > Z[:, ip]
        elif strategy == "emotify":
            known = np.flatnonzero(emo_pr & (folds != f))
            clf = _fit_predict(X[idx], (truth == "rock").astype(int), known, np.arange(len(idx)), multilabel=False,
                               C=0.01)  # fmt: skip
            rock = clf[:, 1] > 0.5
        else:
            rock = None
        if rock is not None:
            Y[poprock, ip] = ~rock[poprock]
            Y[poprock, ir] = rock[poprock]
        best = (-1.0, None)
        for C in C_GRID:
            score = _score(Y0[val], _fit_predict(X[idx], Y, train, val, multilabel=True, C=C), True)
            if score > best[0]:
                best = (score, C)
        P[test] = _fit_predict(X[idx], Y, np.concatenate([train, val]), test, multilabel=True, C=best[1])
        chosen.append((best[1], 0.0))
    row = st.genre_metrics(idx, P, folds)
    row["_genre_oof"], row["_C"] = (idx, P), chosen
    return row


def poprock(data: Path, sources: tuple[str, ...]) -> None:
    st = Study(data)
    print(
        "| 4Q Pop/Rock clips labelled | Emotify pop vs rock | Emotify genre acc. | 4Q genre top-1 | 4Q genre macro ROC-AUC |"
    )
    print("|---|---:|---:|---:|---:|")
    for strategy in ("both", "emotify", "zero:as-mn04", "zero:jamendo-fcn", "zero:msd-musicnn"):
        row = poprock_row(st, sources, strategy)
        print(f"| {strategy} | " + " | ".join(_fmt(row.get(k)) for k in ("poprock_emotify", "acc_emotify", "top1_4q",
                                                                         "auc_4q")) + " |", flush=True)  # fmt: skip


def timing(rounds: int, models: list[str]) -> None:
    """Seconds (wall and CPU, one thread) to analyse a 4-minute track, per model, rounds interleaved in one process."""
    import statistics

    import torch

    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings
    from tests.audiogen import medley, write_audio

    torch.set_num_threads(1)
    track = CACHE / "medley-240s.mp3"
    if not track.exists():
        write_audio(track, medley(240.0, sr=44100, channels=2), 44100)
    from mcbr_core.models.shipped import shipped_models

    # mcbr-fusion: the shipped file, else the same composition under .cache (before it ships)
    refs = {
        m: str(fusion_file()) if m == "mcbr-fusion" and m not in shipped_models() else model_ref(m)
        for m in models
    }
    analyzers = {m: Analyzer(AnalysisSettings(model=refs[m], device="cpu", threads=1)) for m in models}
    for a in analyzers.values():
        a.analyze(track)  # warm-up
    wall: dict[str, list[float]] = {m: [] for m in models}
    cpu: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for m, a in analyzers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            a.analyze(track)
            wall[m].append(time.perf_counter() - t0)
            cpu[m].append(time.process_time() - c0)
    base = statistics.median(cpu[models[0]])
    print(f"| model | audio analysed | wall s (min of {rounds}) | CPU s (median) | CPU vs {models[0]} |")
    print("|---|---:|---:|---:|---:|")
    for m, a in analyzers.items():
        seconds = a.analyze(track).analysed
        print(f"| {m} | {seconds:.1f} s | {min(wall[m]):.2f} | {statistics.median(cpu[m]):.2f} | "
              f"{statistics.median(cpu[m]) / base:.2f}x |", flush=True)  # fmt: skip


COLUMNS = (
    ("top1_4q", "4Q genre top-1"), ("auc_4q", "4Q genre macro ROC-AUC"), ("acc_emotify", "Emotify genre acc."),
    ("acc_emotify_alone", "Emotify genre acc., Emotify-only head"),
    ("poprock_emotify", "Emotify pop vs rock"), ("quadrant_f1", "4Q quadrant macro-F1"),
    ("arousal_auc", "arousal AUC"), ("valence_auc", "valence AUC"), ("cluster_acc", "MIREX cluster acc."),
    ("moods_auc_4q", "12 moods macro AUC, 4Q"), ("moods_auc_mirex", "12 moods macro AUC, MIREX"),
    ("p5_4q", "same-artist P@5, 4Q"), ("p5_emotify", "same-artist P@5, Emotify"),
)  # fmt: skip
#: (row label, kind, sources, late-fusion tagger, extra tag features)
ROWS = (
    ("(a) msd-musicnn embedding (the former default)", "head", ("msd-musicnn",), None, ()),
    ("(a) as-mn04 embedding (10-s patches)", "head", ("as-mn04",), None, ()),
    ("(a) as-mn04 embedding on each 2.99-s patch (as mcbr-fusion runs it)", "head", ("mn04-patch",), None, ()),
    ("(a) jamendo-fcn embedding", "head", ("jamendo-fcn",), None, ()),
    ("(b) msd-musicnn + as-mn04", "head", ("msd-musicnn", "as-mn04"), None, ()),
    ("(b) msd-musicnn + as-mn04 per patch: **mcbr-fusion**", "head", ("msd-musicnn", "mn04-patch"), None, ()),
    ("(b) as-mn04 + jamendo-fcn", "head", ("as-mn04", "jamendo-fcn"), None, ()),
    ("(b) msd-musicnn + jamendo-fcn", "head", ("msd-musicnn", "jamendo-fcn"), None, ()),
    ("(b) msd-musicnn + as-mn04 + jamendo-fcn", "head", ("msd-musicnn", "as-mn04", "jamendo-fcn"), None, ()),
    ("(a) msd-fcn embedding", "head", ("msd-fcn",), None, ()),
    ("(b) as-mn04 + msd-fcn", "head", ("as-mn04", "msd-fcn"), None, ()),
    ("(b) msd-musicnn + msd-fcn", "head", ("msd-musicnn", "msd-fcn"), None, ()),
    ("(b) msd-musicnn + as-mn04 + msd-fcn", "head", ("msd-musicnn", "as-mn04", "msd-fcn"), None, ()),
    ("(c) as-mn04's AudioSet tags, mapped", "zero", ("as-mn04",), None, ()),
    ("(c) jamendo-fcn's Jamendo tags, mapped", "zero", ("jamendo-fcn",), None, ()),
    ("(c) msd-musicnn's Last.fm tags, mapped", "zero", ("msd-musicnn",), None, ()),
    ("(c) msd-fcn's Last.fm tags, mapped", "zero", ("msd-fcn",), None, ()),
    ("(a') small MLP on the mcbr-fusion embedding (256 hidden; not a clip head)", "mlp", ("msd-musicnn", "mn04-patch"),
     None, ()),
    ("(d) mcbr-fusion head + as-mn04 tags, late", "head", ("msd-musicnn", "mn04-patch"), "as-mn04", ()),
    ("(d) mcbr-fusion head + jamendo-fcn tags, late", "head", ("msd-musicnn", "mn04-patch"), "jamendo-fcn", ()),
    ("(d) mcbr-fusion embedding + the taggers' genre tags as features", "head", ("msd-musicnn", "mn04-patch"), None,
     ("as-mn04", "jamendo-fcn", "msd-musicnn")),
    ("(a) msd-vgg embedding", "head", ("msd-vgg",), None, ()),
    ("(a) mtt-vgg embedding", "head", ("mtt-vgg",), None, ()),
    ("(b) msd-musicnn + as-mn04 per patch + msd-vgg (mcbr-fusion + msd-vgg)", "head",
     ("msd-musicnn", "mn04-patch", "msd-vgg"), None, ()),
)  # fmt: skip


def table(data: Path, only: list[str] | None, out: Path | None) -> None:

    st = Study(data)
    results = json.loads(out.read_text()) if out and out.exists() else {}
    for number, (label, kind, sources, late, extra) in enumerate(ROWS, 1):
        if only and not any(o in label or o == str(number) for o in only):
            continue
        t0 = time.perf_counter()
        try:
            if kind == "zero":
                row = zero_row(st, sources[0])
            else:
                row = run_row(
                    st, sources, late=late, extra_tags=extra, head="mlp" if kind == "mlp" else "logreg"
                )
        except SystemExit as exc:  # a source not cached yet
            print(f"{label}: skipped ({exc})", flush=True)
            continue
        if out and out.exists():  # other table runs may have written rows meanwhile
            results = json.loads(out.read_text()) | {k: v for k, v in results.items() if k == label}
        results[label] = {k: v for k, v in row.items() if not k.startswith("_")}
        print(f"{label} ({time.perf_counter() - t0:.0f} s): " + "; ".join(
            f"{name} {_fmt(row.get(key))}" for key, name in COLUMNS if key in row), flush=True)  # fmt: skip
        if out:
            out.write_text(json.dumps(results, indent=1))
    print(markdown(results))


GENRE_COLUMNS = (
    "top1_4q",
    "auc_4q",
    "acc_emotify",
    "acc_emotify_alone",
    "poprock_emotify",
    "p5_4q",
    "p5_emotify",
)
MOOD_COLUMNS = ("quadrant_f1", "arousal_auc", "valence_auc", "cluster_acc", "moods_auc_4q", "moods_auc_mirex")


def markdown(results: dict) -> str:
    """Two tables (genre and similarity columns; mood columns), rows numbered as ``table --only N`` takes them."""
    fused = {"top1_4q", "auc_4q", "acc_emotify", "poprock_emotify", "arousal_auc", "valence_auc"}
    names = dict(COLUMNS)
    out = []
    for columns in (GENRE_COLUMNS, MOOD_COLUMNS):
        keys = [k for k in columns if any(k in r for r in results.values())]
        lines = [
            "| row | source | " + " | ".join(names[k] for k in keys) + " |",
            "|---:|---|" + "---:|" * len(keys),
        ]
        for number, (label, _, _, late, _) in enumerate(ROWS, 1):
            if label not in results:
                continue
            # late fusion touches the genre and arousal/valence heads only; the rest would repeat the base row
            r = {k: v for k, v in results[label].items() if not late or k in fused}
            if not any(k in r for k in keys):
                continue
            cells = [_fmt(tuple(r[k]) if isinstance(r.get(k), list) else r.get(k)) for k in keys]
            lines.append(f"| {number} | {label} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def rekey(data: Path) -> None:
    """Rename cached clip files to their clips' current names, after the data folder was copied or mounted anew.

    A cache file is named after its clip's id and its file's path, size and mtime; a fresh copy of the same
    audio changes the mtime. A clip with no file under its current name and exactly one under its id is renamed.
    """
    from mcbr_core.training.cache import FeatureCache
    from mcbr_core.training.datasets.base import Clip

    ds = Study(data).ds
    renamed = 0
    for folder in sorted(p for p in CACHE.iterdir() if (p / "key.json").is_file()):
        caches: dict[str, FeatureCache] = {}
        for c in ds.clips:
            kind, cid = c.extra["dataset"], c.id.split(":", 1)[1]
            cache = caches.setdefault(kind, FeatureCache(_Key(folder), root=CACHE, namespace=kind))
            path = cache.path(Clip(id=cid, path=c.path))
            if path.exists() or not path.parent.is_dir():
                continue
            found = sorted(path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*.npy"))
            if len(found) == 1:
                found[0].rename(path)
                renamed += 1
    print(f"renamed {renamed} cached clip files under {CACHE}")


def gems(data: Path, sources: tuple[str, ...]) -> None:
    """12-mood macro ROC-AUC per dataset, the mood head trained without and with Emotify's GEMS emotions."""
    print("| mood head trained on | moods AUC, 4Q | moods AUC, MIREX-like | moods AUC, Emotify (GEMS) |")
    print("|---|---:|---:|---:|")
    for flag, name in ((False, "4Q + MIREX-like"), (True, "4Q + MIREX-like + Emotify GEMS")):
        row = run_row(Study(data, emotify_moods=flag), sources)
        cells = [
            f"{row[k]:.3f}" if k in row else "–"
            for k in ("moods_auc_4q", "moods_auc_mirex", "moods_auc_emotify")
        ]
        print(f"| {name} | {' | '.join(cells)} |", flush=True)
