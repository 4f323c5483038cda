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
from tag_protocol import C_GRID, HEAD, _logit, cross_val, folds_of, per_fold

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
    import tag_studies as studies  # they use this module's Study and rows

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.cmd == "embed":
        i, n = (int(v) for v in args.shard.split("/"))
        embed(args.data, args.models.split(","), args.datasets.split(","), args.threads, (i, n))
    elif args.cmd == "table" and args.print:
        print(studies.markdown(json.loads(args.results.read_text())))
    elif args.cmd == "table":
        studies.table(args.data, args.only, args.results)
    elif args.cmd == "timing":
        studies.timing(args.rounds, args.models.split(","))
    elif args.cmd == "rekey":
        studies.rekey(args.data)
    elif args.cmd == "gems":
        studies.gems(args.data, tuple(args.sources.split(",")))
    elif args.cmd == "poprock":
        studies.poprock(args.data, tuple(args.sources.split(",")))


if __name__ == "__main__":
    main()
