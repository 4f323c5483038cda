#!/usr/bin/env python3
"""Tags: sources and heads (issue 13): which pretrained embeddings and tags make the genre and mood tags.

Usage (from the repository root, with ``../shared/data`` beside it)::

    python bench/tag_sources.py ../shared/data embed [--models msd-musicnn,as-mn04,jamendo-fcn,msd-vgg,mtt-vgg]
    python bench/tag_sources.py ../shared/data table [--write docs/results.md]
    python bench/tag_sources.py ../shared/data timing
    python bench/tag_sources.py ../shared/data rekey   # after ../shared/data was copied or mounted anew

``embed`` runs every model on every labelled clip of 4Q, Emotify, the MIREX-like set
and GTZAN exactly as the plugin does (``mcbr_core.analysis.Analyzer`` with the
default ``AnalysisSettings`` windows, through the training ``FeatureCache`` of
``EmbeddingSource``) and caches the per-patch penultimate vectors under
``.cache/tag-sources`` (the ``mcbr train --mode head`` cache format, so the loop reads
them too). Every model's tag layer is linear on that vector, so the cached vectors
also give the per-patch tag probabilities (``sigmoid(W e + b)``, from the weights),
and nothing is run twice.

``table`` scores every alternative under the protocol of ``docs/results.md`` (see
``mcbr_core.tag_heads``) and prints the table of the "Tags: sources and heads" section.

``timing`` analyses a 4-minute track with msd-musicnn alone and with the fusion
model (``models/mcbr-fusion``), in one process, interleaved.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core each: a shared machine
    os.environ.setdefault(_var, "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / ".cache" / "tag-sources"
#: Won et al.'s converted models live here until they ship (tools/convert_won.py --out .cache/won-models)
WON_DIR = ROOT / ".cache" / "won-models"
DATASETS = {"4q": {}, "emotify": {}, "mirex": {}, "gtzan": {"filtered": False}}
MODELS = ("as-mn04", "jamendo-fcn", "msd-musicnn")


class FusionPartSource:
    """One part's per-patch embeddings as a fusion model runs it (``fusionpart-<part id>`` in the cache).

    The fusion's other parts are not run: their outputs are the parts' own (see
    ``mcbr_core.backends.fusion``: the first part keeps its patches), so their caches serve.
    """

    def __init__(self, fusion: Path, part: str) -> None:
        from mcbr_core.analysis import Analyzer
        from mcbr_core.settings import AnalysisSettings

        self.analyzer = Analyzer(AnalysisSettings(model=str(fusion), device="cpu"))
        self.backend = self.analyzer.backend
        self.part = next(p for p in self.backend.parts if p.name == part)
        self.name = f"fusionpart-{self.part.backend.model_id}"

    @property
    def frames_per_second(self) -> float:
        return 1.0 / self.analyzer.patch_seconds()

    def key(self) -> dict:
        b = self.backend
        return {
            "source": "fusion-part",
            "part_id": self.part.backend.model_id,
            "sr": b.sample_rate,
            "patch_frames": b.patch_frames,
            "patch_hop": b.patch_hop,
            "feature_version": b.feature_version,
            "part_feature_version": self.part.backend.feature_version,
            "max_patches": 16,
            "window_patches": 4,
        }

    def compute(self, path: Path) -> np.ndarray:
        patches, _, _ = self.analyzer.features(path)
        y = patches[:, 0, 0, :]  # (B, N)
        x, counts = self.backend._part_patches(self.part, y)
        emb = np.asarray(self.part.backend.infer(x).embedding, dtype=np.float64)  # (sum counts, D)
        owner = np.repeat(np.arange(len(y)), counts)
        total = np.zeros((len(y), emb.shape[1]))
        np.add.at(total, owner, emb)
        return (total / counts[:, None]).astype(np.float32).T[None]  # (1, D, B)


def fusion_file(parts: tuple[str, ...] = ("msd-musicnn", "as-mn04")) -> Path:
    """A fusion model file of ``parts`` under ``.cache`` (the shipped one, when it ships, has the same parts)."""
    from mcbr_core.backends.fusion import make_fusion

    path = CACHE / ("fusion-" + "+".join(parts) + ".safetensors")
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        make_fusion(path, [model_ref(p) for p in parts], name="mcbr-fusion", model_id="mcbr-fusion-candidate")
    return path


def model_ref(name: str) -> str:
    """A shipped model's name, else its converted file under ``.cache/won-models``."""
    from mcbr_core.models.shipped import shipped_models

    if name in shipped_models() or Path(name).is_file():
        return name
    return str(WON_DIR / f"{name}.safetensors")


def embed(
    data: Path, models: list[str], datasets: list[str], threads: int, shard: tuple[int, int] = (0, 1)
) -> None:
    import torch

    from mcbr_core.training.cache import EmbeddingSource, FeatureCache
    from mcbr_core.training.datasets.builtin import load_dataset

    torch.set_num_threads(threads)
    for name in models:
        if name.startswith("fusion:"):  # fusion:PART, the part as the fusion of msd-musicnn and PART runs it
            part = name.split(":", 1)[1]
            source = FusionPartSource(fusion_file(("msd-musicnn", part)), part)
        else:
            source = EmbeddingSource(model_ref(name), device="cpu")
        for kind in datasets:
            ds = load_dataset(kind, data / kind, **DATASETS[kind])
            cache = FeatureCache(source, root=CACHE, namespace=ds.name)
            t0 = time.perf_counter()
            done = [0]

            def progress(i: int, n: int, t0: float = t0, kind: str = kind, done=done, name=name) -> None:
                done[0] = n
                if i % 25 == 0 or i == n:
                    print(f"  {name} {kind}: {i}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)

            mine = ds.clips[shard[0] :: shard[1]]  # shards computed by parallel processes
            ok, failed = cache.prepare(mine, progress=progress)
            print(f"{name} {kind}: {len(ok)} cached, {len(failed)} failed, {done[0]} computed "
                  f"in {time.perf_counter() - t0:.0f} s -> {cache.dir}", flush=True)  # fmt: skip


from tag_maps import ZERO_AFFECT, ZERO_CLUSTERS, ZERO_GENRES, ZERO_QUADRANTS
from tag_protocol import C_GRID, HEAD, _fit_predict, _logit, _score, cross_val, folds_of, per_fold

# -- cached vectors -------------------------------------------------------------------------------------------------


class Vectors:
    """Clip embeddings and clip tag probabilities of one source, for the combined dataset's clips.

    Attributes
    ----------
    emb : np.ndarray [shape=(n, D)]
    probs : np.ndarray [shape=(n, K)]
    tags : list[str]
    ok : np.ndarray [shape=(n,), dtype=bool]
        Clips the cache holds.
    """

    def __init__(self, emb, probs, tags, ok):
        self.emb, self.probs, self.tags, self.ok = emb, probs, list(tags), ok

    def tag(self, name: str):
        return self.probs[:, self.tags.index(name)]


def _cache_folder(model_id: str, prefix: str = "embedding") -> Path:
    import json

    for folder in sorted(CACHE.glob(f"{prefix}-{model_id}-*")):
        key = json.loads((folder / "key.json").read_text())
        if key.get("max_patches", 16) == 16 and key.get("window_patches", 4) == 4:
            return folder
    raise SystemExit(f"no cache for {model_id} under {CACHE}: run `embed` first")


class _Key:
    """Stands in for a feature source, to name cache entries from a cache folder's key.json."""

    def __init__(self, folder: Path) -> None:
        import json

        self._key = json.loads((folder / "key.json").read_text())
        self.name = folder.name.rsplit("-", 1)[0]

    def key(self) -> dict:
        return self._key


def _tag_layer(model: str):
    """(model id, W (K, D), b (K,), tags) of a model's output layer (linear on its embedding)."""
    from mcbr_core.models.checkpoint import load_model, read_card

    path = model_ref(model)
    from mcbr_core.models.shipped import resolve_model

    path = resolve_model(path)
    card = read_card(path)
    tensors, _ = load_model(path)
    name = {"musicnn": "out", "efficientat-mobilenetv3": "classifier.5"}.get(
        card["architecture"]["family"], "dense"
    )
    W, b = tensors[f"{name}.weight"].numpy(), tensors[f"{name}.bias"].numpy()
    ((_, tags),) = card["heads"].items()
    return card["id"], W.astype(np.float64), b.astype(np.float64), tags


def load_vectors(model: str, ds, *, folder: Path | None = None, tag_model: str | None = None) -> Vectors:
    """Every clip's clip embedding and clip tag probabilities (means over its patches) from the cache."""
    from mcbr_core.training.cache import FeatureCache
    from mcbr_core.training.datasets.base import Clip

    model_id, W, b, tags = _tag_layer(tag_model or model)
    folder = folder or _cache_folder(model_id)
    caches = {}
    embs, probs, ok = [], [], []
    for c in ds.clips:
        kind, cid = c.extra["dataset"], c.id.split(":", 1)[1]
        if kind not in caches:
            caches[kind] = FeatureCache(_Key(folder), root=CACHE, namespace=kind)
        path = caches[kind].path(Clip(id=cid, path=c.path))
        if not path.exists():
            embs.append(np.zeros(W.shape[1])), probs.append(np.zeros(len(tags))), ok.append(False)
            continue
        x = np.load(path)[0].T.astype(np.float64)  # (B, D) per-patch embeddings
        embs.append(x.mean(axis=0))
        probs.append((1 / (1 + np.exp(-(x @ W.T + b)))).mean(axis=0))  # the Analyzer's clip tags
        ok.append(True)
    return Vectors(np.array(embs), np.array(probs), tags, np.array(ok))


# -- the study -------------------------------------------------------------------------------------------------------


class Study:
    """The combined dataset, its tasks' targets and folds, and every source's cached vectors."""

    def __init__(self, data: Path, *, emotify_moods: bool = True) -> None:
        from mcbr_core.training.datasets import tags as T

        self.T = T
        self.ds = T.load_tags(data, emotify_moods=emotify_moods)
        self.kind = np.array([c.extra["dataset"] for c in self.ds.clips])
        self._vec: dict[str, Vectors] = {}
        self.genres = list(T.GENRES)
        self.moods = list(T.MOODS)

    def vectors(self, source: str) -> Vectors:
        if source not in self._vec:
            if source == "mn04-patch":  # as-mn04 as the fusion runs it: on each 2.99-s patch
                folder = _cache_folder("as-mn04-1", prefix="fusionpart")
                self._vec[source] = load_vectors("as-mn04", self.ds, folder=folder)
            else:
                self._vec[source] = load_vectors(source, self.ds)
        return self._vec[source]

    def features(self, sources: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated clip embeddings ``(n, D)`` and which clips every source has."""
        vs = [self.vectors(s) for s in sources]
        return np.hstack([v.emb for v in vs]), np.logical_and.reduce([v.ok for v in vs])

    # targets of each task over the clips that have it
    def task(self, name: str) -> tuple[np.ndarray, np.ndarray, bool]:
        ds = self.ds
        info = ds.tasks[name]
        idx = np.array([i for i, c in enumerate(ds.clips) if c.labels.get(name)])
        if info.multilabel:
            Y = np.array([[lab in ds.clips[i].labels[name] for lab in info.labels] for i in idx], dtype=float)
        else:
            Y = np.array([info.labels.index(ds.clips[i].labels[name][0]) for i in idx])
        return idx, Y, info.multilabel

    # -- zero-shot scores ----------------------------------------------------------------------------------------
    def zero_genres(self, tagger: str) -> np.ndarray:
        """``(n, 22)``: per genre label, the highest probability among the tagger's tags for it (NaN: none)."""
        v = self.vectors(tagger)
        Z = np.full((len(self.ds.clips), len(self.genres)), np.nan)
        for k, g in enumerate(self.genres):
            tags = ZERO_GENRES[tagger].get(g, ())
            if tags:
                Z[:, k] = np.max([v.tag(t) for t in tags], axis=0)
        return Z

    def zero_affect(self, tagger: str, axis: str) -> np.ndarray:
        v = self.vectors(tagger)
        signs = ZERO_AFFECT[tagger][axis]
        pos = np.mean([v.tag(t) for t, s in signs.items() if s > 0], axis=0)
        neg = np.mean([v.tag(t) for t, s in signs.items() if s < 0], axis=0)
        return (pos - neg + 1) / 2  # in [0, 1]

    def zero_classes(self, tagger: str, table: dict, labels: tuple[str, ...]) -> np.ndarray:
        v = self.vectors(tagger)
        Z = np.full((len(self.ds.clips), len(labels)), np.nan)
        for k, lab in enumerate(labels):
            if table[tagger].get(lab):
                Z[:, k] = np.mean([v.tag(t) for t in table[tagger][lab]], axis=0)
        return Z

    # -- genre metrics from scores over the 22 genre labels -----------------------------------------------------
    def genre_metrics(self, idx: np.ndarray, P: np.ndarray, folds: np.ndarray) -> dict[str, tuple]:
        """4Q top-1 and macro ROC-AUC over the AllMusic families; Emotify accuracy over its 4 genres."""
        from sklearn.metrics import roc_auc_score

        T, g = self.T, self.genres
        out: dict[str, tuple] = {}
        is4q = self.kind[idx] == "4q"
        fam_sets = [self.ds.clips[i].extra["source_labels"].get("genres", ()) for i in idx]
        allowed = [set(T.genre_labels(f)) for f in fam_sets]  # pop or rock both count for Pop/Rock
        Pn = np.where(np.isnan(P), -np.inf, P)
        top = Pn.argmax(1)
        hit = np.array([g[t] in a for t, a in zip(top, allowed, strict=True)])
        out["top1_4q"] = per_fold(folds, lambda te: hit[te][is4q[te]].mean())
        aucs, covered = [], 0
        for fam, labels in T.ALLMUSIC_GENRES.items():
            cols = [g.index(lab) for lab in labels]
            score = np.nanmax(P[:, cols], axis=1) if not np.isnan(P[:, cols]).all() else None
            if score is None:
                continue
            covered += 1
            y = np.array([fam in f for f in fam_sets])[is4q]
            aucs.append(roc_auc_score(y, np.nan_to_num(score[is4q], nan=0.0)))
        out["auc_4q"] = (float(np.mean(aucs)), covered)
        ise = self.kind[idx] == "emotify"
        if ise.any():
            four = [g.index(x) for x in ("classical", "electronic", "pop", "rock")]
            truth = np.array([self.ds.clips[i].labels["genres"][0] for i in idx])
            pred = np.array(g)[np.array(four)[Pn[:, four].argmax(1)]]
            ok = pred == truth
            out["acc_emotify"] = per_fold(
                folds, lambda te: ok[te][ise[te]].mean() if ise[te].any() else np.nan
            )
            pr = np.isin(truth, ("pop", "rock"))
            pr_pred = np.where(Pn[:, g.index("rock")] > Pn[:, g.index("pop")], "rock", "pop")
            out["poprock_emotify"] = per_fold(
                folds, lambda te: (pr_pred[te] == truth[te])[pr[te] & ise[te]].mean()
            )
        return out


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], int):
        return f"{v[0]:.3f} ({v[1]}/21)" if v[1] < 21 else f"{v[0]:.3f}"
    if isinstance(v, tuple):
        return "–" if np.isnan(v[0]) else f"{v[0]:.3f} ± {v[1]:.3f}"
    return f"{v:.3f}"


def _nanfold(folds, fn):
    vals = [fn(np.flatnonzero(folds == f)) for f in range(5)]
    return float(np.nanmean(vals)), float(np.nanstd(vals))


def run_row(st: Study, sources: tuple[str, ...], *, late: str | None = None, extra_tags: tuple[str, ...] = (),
            head: str = "logreg") -> dict[str, object]:  # fmt: skip
    """Heads on the concatenated clip embeddings of ``sources`` (plus ``extra_tags``' genre-tag logits as
    features), optionally fused late with tagger ``late``'s zero-shot scores; every benchmark."""
    from sklearn.metrics import f1_score, roc_auc_score

    row: dict[str, object] = {}
    HEAD["kind"] = head
    grid = (0.1, 1.0, 10.0) if head == "mlp" else C_GRID  # an MLP's alpha: 10, 1, 0.1
    X, ok = st.features(sources)
    if not extra_tags and not late:
        for part in ("4q", "emotify"):
            row[f"p5_{part}"] = same_artist_p5(st, X, ok & (st.kind == part))
    for t in extra_tags:
        X = np.hstack(
            [X, _logit(np.nan_to_num(st.zero_genres(t)[:, ~np.isnan(st.zero_genres(t)).all(0)], nan=0.5))]
        )
    # genre: one multi-label head over the 22 genre labels, trained on 4Q + Emotify + GTZAN
    idx, Y, _ = st.task("genres")
    if ok[idx].all():
        folds = folds_of(st.ds, idx, Y)
        Z = np.nan_to_num(st.zero_genres(late)[idx], nan=0.5) if late else None
        P, chosen = cross_val(X[idx], Y, folds, multilabel=True, zero=Z, grid=grid)
        row.update(st.genre_metrics(idx, P, folds))
        row["_genre_oof"], row["_C_genres"] = (idx, P), chosen
        # for reference: a softmax head on Emotify alone (the protocol of the shipped mcbr-genre)
        emo = idx[st.kind[idx] == "emotify"]
        four = ["classical", "electronic", "pop", "rock"]
        ye = np.array([four.index(st.ds.clips[i].labels["genres"][0]) for i in emo])
        fe = folds_of(st.ds, emo, ye)
        Pe, _ = cross_val(X[emo], ye, fe, multilabel=False, grid=grid)
        row["acc_emotify_alone"] = per_fold(fe, lambda te: (Pe[te].argmax(1) == ye[te]).mean())
    # quadrant, arousal, valence: 4Q
    for name in ("quadrant", "arousal", "valence"):
        idx, Y, _ = st.task(name)
        if not ok[idx].all():
            continue
        folds = folds_of(st.ds, idx, Y)
        Z = None
        if late and name != "quadrant":
            z = st.zero_affect(late, name)[idx]
            # arousal's labels are (high, low), valence's (negative, positive)
            Z = np.stack([z, 1 - z], 1) if name == "arousal" else np.stack([1 - z, z], 1)
        P, row[f"_C_{name}"] = cross_val(X[idx], Y, folds, multilabel=False, zero=Z, grid=grid)
        if name == "quadrant":
            row["quadrant_f1"] = per_fold(
                folds, lambda te, Y=Y, P=P: f1_score(Y[te], P[te].argmax(1), average="macro")
            )
            row["_quadrant_oof"] = (idx, P)
        else:
            pos = 0 if name == "arousal" else 1  # arousal labels (high, low); valence (negative, positive)
            row[f"{name}_auc"] = per_fold(
                folds, lambda te, Y=Y, P=P, pos=pos: roc_auc_score(Y[te] == pos, P[te, pos])
            )
    # MIREX clusters
    idx, Y, _ = st.task("cluster")
    if ok[idx].all():
        folds = folds_of(st.ds, idx, Y)
        P, _ = cross_val(X[idx], Y, folds, multilabel=False, grid=grid)
        row["cluster_acc"] = per_fold(folds, lambda te: (P[te].argmax(1) == Y[te]).mean())
    # moods: one multi-label head over the 12 mood words, trained on 4Q + MIREX
    idx, Y, _ = st.task("moods")
    if ok[idx].all() and not late:
        folds = folds_of(st.ds, idx, Y)
        P, row["_C_moods"] = cross_val(X[idx], Y, folds, multilabel=True, grid=grid)
        for part in ("4q", "mirex", "emotify"):
            m = st.kind[idx] == part
            if not m.any():
                continue
            aucs = [roc_auc_score(Y[m, k], P[m, k]) for k in range(Y.shape[1]) if 0 < Y[m, k].sum() < m.sum()]
            row[f"moods_auc_{part}"] = float(np.mean(aucs))
        row["_moods_oof"] = (idx, P)
    HEAD["kind"] = "logreg"
    return row


def same_artist_p5(st: Study, X: np.ndarray, mask: np.ndarray) -> float:
    """Mean share of each clip's 5 nearest clips (cosine, the store's angular metric; query excluded) by its artist,
    over the clips of one dataset whose artist has another clip (``beet similar``'s proxy in docs/results.md)."""
    from mcbr_core.training.splits import group_key

    idx = np.flatnonzero(mask)
    E = X[idx] / np.linalg.norm(X[idx], axis=1, keepdims=True)
    groups = np.array([group_key(st.ds.clips[i].artist, st.ds.clips[i].id) for i in idx])
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    near = np.argsort(-S, axis=1)[:, :5]
    same = groups[near] == groups[:, None]
    has = np.array([(groups == g).sum() > 1 for g in groups])
    return float(same[has].mean())


def zero_row(st: Study, tagger: str) -> dict[str, object]:
    """A tagger's own tags mapped onto our labels, no training (folds only to report a spread)."""
    from sklearn.metrics import f1_score, roc_auc_score

    row: dict[str, object] = {}
    idx, Y, _ = st.task("genres")
    folds = folds_of(st.ds, idx, Y)
    row.update(st.genre_metrics(idx, st.zero_genres(tagger)[idx], folds))
    for name in ("arousal", "valence"):
        idx, Y, _ = st.task(name)
        folds = folds_of(st.ds, idx, Y)
        z = st.zero_affect(tagger, name)[idx]
        pos = 0 if name == "arousal" else 1
        row[f"{name}_auc"] = per_fold(folds, lambda te, Y=Y, z=z, pos=pos: roc_auc_score(Y[te] == pos, z[te]))
    idx, Y, _ = st.task("quadrant")
    folds = folds_of(st.ds, idx, Y)
    Zq = np.nan_to_num(st.zero_classes(tagger, ZERO_QUADRANTS, ("Q1", "Q2", "Q3", "Q4"))[idx], nan=-1)
    row["quadrant_f1"] = per_fold(folds, lambda te: f1_score(Y[te], Zq[te].argmax(1), average="macro"))
    idx, Y, _ = st.task("cluster")
    folds = folds_of(st.ds, idx, Y)
    Zc = np.nan_to_num(st.zero_classes(tagger, ZERO_CLUSTERS, ("C1", "C2", "C3", "C4", "C5"))[idx], nan=-1)
    row["cluster_acc"] = per_fold(folds, lambda te: (Zc[te].argmax(1) == Y[te]).mean())
    return row


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
    import json

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder (4q/, emotify/, mirex/, gtzan/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--models", default=",".join(MODELS))
    e.add_argument("--datasets", default=",".join(DATASETS))
    e.add_argument("--threads", type=int, default=1)
    e.add_argument(
        "--shard", default="0/1", help="I/N: compute every N-th clip from the I-th (parallel processes)"
    )
    t = sub.add_parser("table")
    t.add_argument("--only", action="append", help="rows whose label contains this, or whose number it is")
    t.add_argument("--print", action="store_true", help="only print the table of the figures kept")
    t.add_argument("--results", type=Path, default=CACHE / "results.json", help="figures kept between runs")
    ti = sub.add_parser("timing")
    ti.add_argument("--rounds", type=int, default=5)
    ti.add_argument("--models", default="msd-musicnn,mcbr-fusion,as-mn04,jamendo-fcn")
    sub.add_parser("rekey", help="rename cached clips after the data folder was copied or mounted anew")
    ge = sub.add_parser("gems", help="the mood head with and without Emotify's GEMS emotions as mood labels")
    ge.add_argument("--sources", default="msd-musicnn,mn04-patch")
    pr = sub.add_parser("poprock")
    pr.add_argument("--sources", default="msd-musicnn,mn04-patch")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.cmd == "embed":
        i, n = (int(v) for v in args.shard.split("/"))
        embed(args.data, args.models.split(","), args.datasets.split(","), args.threads, (i, n))
    elif args.cmd == "table" and args.print:
        print(markdown(json.loads(args.results.read_text())))
    elif args.cmd == "table":
        table(args.data, args.only, args.results)
    elif args.cmd == "timing":
        timing(args.rounds, args.models.split(","))
    elif args.cmd == "rekey":
        rekey(args.data)
    elif args.cmd == "gems":
        gems(args.data, tuple(args.sources.split(",")))
    elif args.cmd == "poprock":
        poprock(args.data, tuple(args.sources.split(",")))


if __name__ == "__main__":
    main()
