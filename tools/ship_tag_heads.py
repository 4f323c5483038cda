#!/usr/bin/env python3
"""Train, measure and write the tag heads on mcbr-fusion (issue 13): genres, moods, arousal, valence.

Usage (after ``bench/tag_sources.py ... embed`` filled the caches; see docs/results.md)::

    python tools/ship_tag_heads.py ../shared/data --out models/

It

1. writes ``models/mcbr-fusion.safetensors``: msd-musicnn and as-mn04 run on one decode
   (``mcbr_core.backends.fusion``; no weights of its own, a card naming its parts);
2. fills the training cache of mcbr-fusion's embedding from the parts' cached analyses
   (msd-musicnn's own per-patch embeddings, and as-mn04's as the fusion runs it on each
   patch: ``bench/tag_sources.py embed --models fusion:as-mn04``), then checks a sample of
   clips against real analyses through the fusion model;
3. labels 4Q's Pop/Rock clips pop or rock with the strategy the bench measured best
   (``--poprock``; written to ``.cache/tag-sources/poprock.csv``);
4. per head, on all our labelled music (``mcbr-tags``: 4Q, Emotify, the MIREX-like set,
   GTZAN): cross-validates it on the training loop (5 artist-disjoint folds, the loop's
   own metrics), computes the benchmarks and per-label thresholds from the bench's
   out-of-fold predictions (same folds), and fits the shipped head on every clip with the
   C the cross-validation chose most often;
5. writes each head with a card: data, CV metrics, thresholds, the training clips'
   fingerprint (the loop writes it) and the licence (research-only data: research-only head).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np
import tag_sources as bench
import tag_studies as studies

from tools.heads_common import argument_parser, licence_lines

FUSION = "mcbr-fusion"
FUSION_ID = "mcbr-fusion-1"
PARTS = ("msd-musicnn", "as-mn04")
SOURCES = ("msd-musicnn", "mn04-patch")  # the bench's names of the fusion's two halves
CITE = {
    "4q": 'R. Panda, R. Malheiro, R. P. Paiva, "Novel audio features for music emotion recognition", IEEE TAFFC, 2018.',
    "emotify": 'A. Aljanaki, F. Wiering, R. C. Veltkamp, "Studying emotion induced by music through a crowdsourcing '
    'game", Information Processing & Management, 2016.',
    "mirex": 'R. Panda, R. Malheiro, B. Rocha, A. Oliveira, R. P. Paiva, "Multi-modal music emotion recognition: a new '
    'dataset, methodology and comparative analysis", CMMR 2013.',
    "gtzan": 'G. Tzanetakis, P. Cook, "Musical genre classification of audio signals", IEEE TSAP, 2002.',
}
LICENCES = {
    "4q": "4Q: AllMusic previews released by the authors for research only (Panda et al. 2018)",
    "emotify": "Emotify: Magnatune music, CC BY-NC-SA; annotations for research use (Aljanaki et al. 2016)",
    "mirex": "MIREX-like mood set: AllMusic 30-s previews, research use only (Panda et al. 2013)",
    "gtzan": "GTZAN: research use only (Tzanetakis & Cook 2002)",
}
HEADS: list[dict[str, Any]] = [
    {"name": "mcbr-genres", "kind": "genre", "task": "genres", "default_for": ["genre"], "parts": ("4q", "emotify", "gtzan"),
     "about": "genres on beets' lastgenre tree names (AllMusic's 21 families mapped onto them, Pop/Rock split into "
              "pop and rock), multi-label"},
    {"name": "mcbr-moods", "kind": "mood", "task": "moods", "default_for": ["mood"], "parts": ("4q", "mirex", "emotify"),
     "about": "twelve AllMusic-style moods (aggressive, calm, cheerful, dark, energetic, happy, melancholic, party, "
              "romantic, sad, tense, uplifting), multi-label"},
    {"name": "mcbr-arousal", "kind": "other", "task": "arousal", "default_for": [], "parts": ("4q",),
     "scale": {"field": "mcbr_arousal", "label": "high"},
     "about": "arousal: the probability of `high` (4Q's Q1 and Q2 against Q3 and Q4) is mcbr_arousal in [0, 1]"},
    {"name": "mcbr-valence", "kind": "other", "task": "valence", "default_for": [], "parts": ("4q",),
     "scale": {"field": "mcbr_valence", "label": "positive"},
     "about": "valence: the probability of `positive` (4Q's Q1 and Q4 against Q2 and Q3) is mcbr_valence in [0, 1]"},
]  # fmt: skip
log = logging.getLogger("ship-tags")


# -- 1. the fusion model ----------------------------------------------------------------------------------------------


def write_fusion(out: Path) -> Path:
    from mcbr_core.backends.fusion import make_fusion

    path = make_fusion(
        out / f"{FUSION}.safetensors", list(PARTS), name=FUSION, model_id=FUSION_ID,
        description="msd-musicnn and EfficientAT's as-mn04 on one decode (32 kHz): each 2.99-s msd-musicnn patch "
        "goes through both networks (as-mn04 hears it repeated to its 10-s input); the embedding is msd-musicnn's "
        "200-d penultimate layer followed by as-mn04's 512-d hidden layer, so clip heads read both. See "
        "docs/results.md, 'Tags: sources and heads'.",
        licence={"weights": "none of its own; msd-musicnn: ISC (Music Technology Group, UPF); as-mn04: MIT "
                 "(Florian Schmid), AudioSet labels CC BY 4.0 (Google)", "parts": list(PARTS)},
        metrics={"analysis_time": {
            "measured": "bench/tag_sources.py timing: a 4-minute MP3, default windows (48 s heard), one thread",
            "cpu_seconds": {"msd-musicnn": 1.13, FUSION: 1.35}, "wall_seconds": {"msd-musicnn": 1.09, FUSION: 1.30},
            "ratio_to_msd_musicnn": 1.2}},
    )  # fmt: skip
    path.chmod(0o644)
    (out / f"{FUSION}.md").write_text(FUSION_MD.format(id=FUSION_ID), encoding="utf-8")
    return path


FUSION_MD = """# mcbr-fusion (`{id}`)

msd-musicnn and EfficientAT's as-mn04 run on one decode, for the clip heads that read
both (`mcbr-genres`, `mcbr-moods`, `mcbr-arousal`, `mcbr-valence`).

- **Backend**: `fusion` (`mcbr_core/backends/fusion.py`). No weights of its own: the card
  names its parts (`msd-musicnn`, id `msd-musicnn-1`; `as-mn04`, id `as-mn04-1`) and refuses
  a part whose id differs.
- **Input**: the `waveform` extractor at 32 kHz (as-mn04's rate), cut into msd-musicnn's
  patches (95,744 samples = 2.992 s), so the analysis windows are msd-musicnn's. Each
  patch is resampled to 16 kHz for msd-musicnn's own front end, and goes at 32 kHz through
  as-mn04's front end, repeated to fill its 10-s input.
- **Outputs**: heads `msd-musicnn` (its 50 Last.fm tags) and `as-mn04` (527 AudioSet
  classes), with the parts' tag kinds; embedding 712-d: msd-musicnn's 200-d penultimate
  layer (0:200), then as-mn04's 512-d hidden layer (200:712), mean over patches.
- **Cost**: 1.20 x msd-musicnn alone on a 4-minute track (1.35 against 1.13 CPU-seconds,
  one thread; `bench/tag_sources.py timing`).
- **Measurements**: see docs/results.md, "Tags: sources and heads".

## Licences

- msd-musicnn: ISC, Music Technology Group, Universitat Pompeu Fabra (see `msd-musicnn.md`).
- as-mn04: MIT, Florian Schmid; AudioSet labels CC BY 4.0, Google (see `as-mn04.md`).

Reproduce: `python tools/ship_tag_heads.py ../shared/data --out models/`.
"""


# -- 2. its training cache, from the parts' caches ------------------------------------------------------------------------


def seed_cache(ds: Any, fusion: Path) -> int:
    """Write mcbr-fusion's per-patch embeddings ``(1, 712, B)`` into the training cache from the parts' caches."""
    from mcbr_core.training.cache import EmbeddingSource, FeatureCache
    from mcbr_core.training.datasets.base import Clip

    target = FeatureCache(EmbeddingSource(str(fusion), device="cpu"), root=bench.CACHE, namespace=ds.name)
    parts = [bench._cache_folder("msd-musicnn-1"), bench._cache_folder("as-mn04-1", prefix="fusionpart")]
    caches: dict[tuple[int, str], Any] = {}
    written = 0
    for c in ds.clips:
        if target.path(c).exists():
            continue
        kind, cid = c.extra["dataset"], c.id.split(":", 1)[1]
        halves = []
        for k, folder in enumerate(parts):
            if (k, kind) not in caches:
                caches[k, kind] = FeatureCache(bench._Key(folder), root=bench.CACHE, namespace=kind)
            halves.append(np.load(caches[k, kind].path(Clip(id=cid, path=c.path))))  # (1, D, B)
        # msd-musicnn alone pads its STFT at the clip's end, so a clip 0-16 ms short of a whole number of
        # patches gives it one patch more than the fusion, which cuts whole patches of samples: drop that one
        n0, n1 = halves[0].shape[2], halves[1].shape[2]
        if n0 - n1 not in (0, 1):
            raise SystemExit(f"{c.id}: {n0} msd-musicnn patches but {n1} fusion patches")
        halves[0] = halves[0][:, :, :n1]
        target.store(c, np.concatenate(halves, axis=1))  # (1, 712, B)
        written += 1
    return written


def check_seeded(ds: Any, fusion: Path, n: int = 12) -> dict[str, float]:
    """Analyse ``n`` clips through the fusion model itself and compare with the seeded clip embeddings."""
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings
    from mcbr_core.training.cache import EmbeddingSource, FeatureCache

    cache = FeatureCache(EmbeddingSource(str(fusion), device="cpu"), root=bench.CACHE, namespace=ds.name)
    analyzer = Analyzer(AnalysisSettings(model=str(fusion), device="cpu", threads=1))
    rng = np.random.default_rng(0)
    cos = {"msd-musicnn": [], "as-mn04": []}
    for i in rng.choice(len(ds.clips), n, replace=False):
        c = ds.clips[int(i)]
        real = analyzer.analyze(c.path).embedding.astype(np.float64)
        seeded = np.load(cache.path(c))[0].mean(axis=1)
        for name, sl in (("msd-musicnn", slice(0, 200)), ("as-mn04", slice(200, 712))):
            a, b = real[sl], seeded[sl]
            cos[name].append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    return {f"min_cosine_{k}": round(min(v), 5) for k, v in cos.items()} | {"clips": n}


# -- 3. Pop/Rock ----------------------------------------------------------------------------------------------------------


def write_poprock(st: Any, strategy: str, path: Path) -> dict[str, int]:
    """Label every 4Q Pop/Rock clip pop or rock with ``strategy`` (fitted on all Emotify pop/rock clips)."""
    idx, _, _ = st.task("genres")
    X, _ = st.features(SOURCES)
    truth = np.array([st.ds.clips[i].labels["genres"][0] for i in idx])
    emo = np.flatnonzero((st.kind[idx] == "emotify") & np.isin(truth, ("pop", "rock")))
    if strategy == "emotify":
        rock = bench._fit_predict(X[idx], (truth == "rock").astype(int), emo, np.arange(len(idx)),
                                  multilabel=False, C=0.01)[:, 1] > 0.5  # fmt: skip
    elif strategy.startswith("zero:"):
        Z = st.zero_genres(strategy.split(":", 1)[1])[idx]
        g = st.genres
        rock = Z[:, g.index("rock")] > Z[:, g.index("pop")]
    else:
        raise SystemExit(f"unknown Pop/Rock strategy {strategy!r}")
    counts: Counter[str] = Counter()
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["song", "labels"])
        for j, i in enumerate(idx):
            c = st.ds.clips[i]
            if c.extra["dataset"] == "4q" and "Pop/Rock" in c.extra["source_labels"].get("genres", ()):
                label = "rock" if rock[j] else "pop"
                w.writerow([c.id.split(":", 1)[1], label])
                counts[label] += 1
    return dict(counts)


# -- 4. measure and fit -----------------------------------------------------------------------------------------------


#: F-beta the thresholds maximise: 0.5 weighs precision twice as much as recall (a wrong tag in a file costs more
#: than a missing one; the plugin writes the best label anyway, and at most ``count`` labels)
BETA = 0.5
#: A label whose best out-of-fold F-beta stays below this is too unreliable to write beside a better one:
#: its threshold is 1 (it is still written when it is the best label)
WEAK = 0.25


def thresholds(
    Y: np.ndarray, P: np.ndarray, labels: list[str], beta: float = BETA
) -> dict[str, dict[str, float]]:
    """Per label, the threshold with the best F-beta on the out-of-fold probabilities, its precision and recall."""
    out = {}
    b2 = beta * beta
    for k, label in enumerate(labels):
        y, p = Y[:, k] > 0.5, P[:, k]
        best = (0.0, 0.5, 0.0, 0.0)
        for t in np.unique(np.round(p, 3)):
            pred = p >= t
            tp = float((pred & y).sum())
            if not tp:
                continue
            prec, rec = tp / pred.sum(), tp / y.sum()
            score = (1 + b2) * prec * rec / (b2 * prec + rec)
            if score > best[0]:
                best = (score, float(t), prec, rec)
        f1 = 2 * best[2] * best[3] / (best[2] + best[3]) if best[0] else 0.0
        weak = bool(best[0] < WEAK)
        out[label] = {"threshold": 1.0 if weak else round(best[1], 3), "f_beta": round(best[0], 3), "f1": round(f1, 3),
                      "precision": round(best[2], 3), "recall": round(best[3], 3), "positives": int(y.sum()),
                      "weak": weak} | ({"best_threshold": round(best[1], 3)} if weak else {})  # fmt: skip
    return out


def measure(st: Any, poprock: str) -> dict[str, dict[str, Any]]:
    """Benchmarks, out-of-fold thresholds and the C each fold chose, per head, under the bench protocol."""
    genre = studies.poprock_row(st, SOURCES, poprock)
    rest = bench.run_row(st, SOURCES)
    out: dict[str, dict[str, Any]] = {}
    idx, P = genre["_genre_oof"]
    _, Y, _ = st.task("genres")
    out["genres"] = {"benchmarks": {k: v for k, v in genre.items() if not k.startswith("_")},
                     "C": genre["_C"], "thresholds": thresholds(Y, P, st.genres)}  # fmt: skip
    idx, P = rest["_moods_oof"]
    _, Y, _ = st.task("moods")
    out["moods"] = {"benchmarks": {k: rest[k] for k in ("moods_auc_4q", "moods_auc_mirex", "moods_auc_emotify")},
                    "C": rest["_C_moods"], "thresholds": thresholds(Y, P, st.moods)}  # fmt: skip
    for name in ("arousal", "valence"):
        out[name] = {"benchmarks": {f"{name}_auc": rest[f"{name}_auc"], "quadrant_f1": rest["quadrant_f1"]},
                     "C": rest[f"_C_{name}"]}  # fmt: skip
    return out


def _c_of(chosen: list[tuple[float, float]]) -> float:
    """The C the folds chose most often (the smaller on a tie)."""
    counts = Counter(c for c, _ in chosen)
    return min(c for c, n in counts.items() if n == max(counts.values()))


def ship(
    spec: dict[str, Any], ds: Any, facts: dict[str, Any], out: Path, runs: Path, extra: dict[str, Any]
) -> dict:
    from mcbr_core.models.checkpoint import load_model, save_model
    from mcbr_core.training.loop import TrainConfig, cross_validate, train

    name, task = spec["name"], spec["task"]
    base = {
        "task": task,
        "mode": "head",
        "base_model": FUSION,
        "device": "cpu",
        "cache_dir": str(bench.CACHE),
    }
    for sub in ("cv", "final"):
        shutil.rmtree(runs / f"{name}-{sub}", ignore_errors=True)
    C = _c_of(facts["C"])
    cv = cross_validate(
        TrainConfig(folds=5, run_dir=str(runs / f"{name}-cv"), arch_options={"C": C}, **base), ds
    )
    # every clip: C is the CV's, so the "choice" on the validation fifth is between equals, and the loop then
    # refits on training + validation (it has no holdout without a validation part)
    final = train(
        TrainConfig(val_fraction=0.2, test_fraction=0.0, run_dir=str(runs / f"{name}-final"), name=name,
                    arch_options={"C": [C, C]}, **base), ds)  # fmt: skip
    tensors, card = load_model(final.model_path)
    card = {k: v for k, v in card.items() if k not in ("format", "metrics")}
    card["id"] = f"{name}-1-{card['id'].rsplit('-', 1)[-1]}"
    card["name"] = name
    card["default_for"] = spec["default_for"]
    if (
        "scale" in spec
    ):  # a continuous attribute: the probability of one label (mcbr_core.models.clip_head.resolve_scales)
        card["scale"] = spec["scale"]
    card["description"] = f"A clip head on mcbr-fusion's clip embedding: {spec['about']}."
    card["metrics"] = {
        "benchmarks": facts["benchmarks"],
        "head_cv": {"folds": len(cv.folds), "mean": {k: round(v, 4) for k, v in cv.mean.items() if isinstance(v, float)},
                    "std": {k: round(v, 4) for k, v in cv.std.items() if isinstance(v, float)}},
        "C": {"per_fold": [c for c, _ in facts["C"]], "shipped": C},
        "protocol": "5-fold artist-disjoint CV on ../shared/data (mcbr_core.training.splits.grouped_folds, seed 0) "
        "over the mcbr-tags dataset; fold f tests, fold f + 1 chooses C; benchmarks and thresholds from the "
        "out-of-fold predictions of bench/tag_sources.py (same folds); head_cv from the training loop "
        "with the shipped C. Development figures: an artist-disjoint part of each dataset is held back.",
    }  # fmt: skip
    if "thresholds" in facts:
        card["thresholds"] = {k: v["threshold"] for k, v in facts["thresholds"].items()}
        card["metrics"]["thresholds"] = facts["thresholds"]
    card.update(extra)
    card["licence"] = {
        "weights": "derived from data licensed for research use only: research and non-commercial use only",
        "training_data": "; ".join(LICENCES[p] for p in spec["parts"]),
        "base_model": "mcbr-fusion: msd-musicnn (ISC, MTG-UPF) and as-mn04 (MIT, Florian Schmid; AudioSet "
        "labels CC BY 4.0)",
        "cite": [CITE[p] for p in spec["parts"]],
    }  # fmt: skip
    path = save_model(out / f"{name}.safetensors", tensors, card)
    path.chmod(0o644)
    write_markdown(out / f"{name}.md", card, spec)
    return {"name": name, "path": str(path), "C": C, "cv": card["metrics"]["head_cv"]["mean"],
            "benchmarks": facts["benchmarks"]}  # fmt: skip


def _pm(v: Any) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[1], float):
        return f"{v[0]:.3f} ± {v[1]:.3f}"
    if isinstance(v, (list, tuple)):
        return f"{v[0]:.3f} ({v[1]}/21 families)" if v[1] < 21 else f"{v[0]:.3f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


BENCH_NAMES = {
    "top1_4q": "4Q AllMusic genre top-1 (first label among the clip's families)",
    "auc_4q": "4Q AllMusic genre macro ROC-AUC (21 families; Pop/Rock scored by max(pop, rock))",
    "acc_emotify": "Emotify genre accuracy (argmax over classical, electronic, pop, rock)",
    "poprock_emotify": "Emotify pop vs rock accuracy (pop and rock clips)",
    "moods_auc_4q": "12 moods, macro ROC-AUC on 4Q clips",
    "moods_auc_mirex": "12 moods, macro ROC-AUC on MIREX-like clips",
    "moods_auc_emotify": "12 moods, macro ROC-AUC on Emotify clips (their GEMS emotions as moods)",
    "arousal_auc": "arousal ROC-AUC (4Q: Q1 + Q2 against Q3 + Q4)",
    "valence_auc": "valence ROC-AUC (4Q: Q1 + Q4 against Q2 + Q3)",
    "quadrant_f1": "4Q quadrant macro-F1 (a softmax quadrant head on the same embedding, for reference)",
}


def write_markdown(path: Path, card: dict[str, Any], spec: dict[str, Any]) -> None:
    ((_head, labels),) = card["heads"].items()
    m = card["metrics"]
    n = card["training"]["data"]["n_train"] + card["training"]["data"]["n_val"]
    lines = [
        f"# {card['name']} (`{card['id']}`)",
        "",
        card["description"],
        "",
        f"- **Model**: L2-regularised logistic regression ({card['activation'][_head]} over {len(labels)} labels: "
        f"{', '.join(labels)}) on the standardised 712-d clip embedding of `mcbr-fusion` (msd-musicnn's 200-d "
        f"penultimate layer, then as-mn04's 512-d hidden layer, averaged over the analysed patches). It reads the "
        f"vector the plugin stores, so it adds no analysis time once the model is `mcbr-fusion`. "
        f"C = {m['C']['shipped']} (the value the cross-validation chose most often: {m['C']['per_fold']}), fitted "
        f"on every clip.",
        f"- **Training data**: `mcbr-tags` in `../shared/data` ({n} clips of {', '.join(spec['parts'])} with "
        f"`{spec['task']}` labels; see `mcbr_core/training/datasets/tags.py` for the label mapping).",
        f"- **Training clips**: the card lists a fingerprint of each of the {card['training']['fingerprint']['n']} "
        "clips (`training.fingerprint`); `mcbr eval` warns when it evaluates the head on any of them.",
        f"- **Default**: `default_for` {spec['default_for'] or 'none'}: with `mcbr.model: mcbr-fusion`, "
        + (f"`{spec['kind']}.source: auto` picks this head." if spec["default_for"] else
           "the plugin reads it explicitly (see docs/results.md)."),
        "",
        "## Measurements",
        "",
        "| benchmark (5-fold artist-disjoint CV, mean ± std over test folds) | value |",
        "|---|---:|",
    ]  # fmt: skip
    lines += [f"| {BENCH_NAMES.get(k, k)} | {_pm(v)} |" for k, v in m["benchmarks"].items()]
    shown = ("accuracy", "macro_f1", "micro_f1", "precision_at_1", "artist_precision_at_5")
    lines += ["", "The training loop's own cross-validation with the shipped C (same folds, all test clips): "
              + ", ".join(f"{k} {v:.3f} ± {m['head_cv']['std'].get(k, 0):.3f}" for k, v in m["head_cv"]["mean"].items()
                          if k in shown)
              + "."]  # fmt: skip
    if "thresholds" in m:
        lines += [
            "",
            "## Thresholds per label",
            "",
            f"Chosen for the best F{BETA:g} (precision counts twice as much as recall) on the out-of-fold "
            "probabilities of the cross-validation (`thresholds` in the card); a label is written when its "
            f"probability reaches its threshold (the best label is written anyway). A label whose best F{BETA:g} "
            f"stays below {WEAK} (marked *weak*) gets threshold 1: too unreliable to write beside a better one.",
            "",
            f"| label | threshold | F{BETA:g} | F1 | precision | recall | positives |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {k}{' (*weak*)' if v['weak'] else ''} | {v['threshold']:.3f} | {v['f_beta']:.3f} | {v['f1']:.3f} | {v['precision']:.3f} | "
                  f"{v['recall']:.3f} | {v['positives']} |" for k, v in m["thresholds"].items()]  # fmt: skip
    lines += [
        "",
        "Reproduce: `python tools/ship_tag_heads.py ../shared/data --out models/`. Development figures: an "
        "artist-disjoint part of each dataset is held back and was not used.",
        "",
        *licence_lines(card["licence"]),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argument_parser(
        __doc__,
        "the shared data folder (4q/, emotify/, mirex/, gtzan/)",
        out=ROOT / "models",
        runs=Path("runs/ship-tags"),
    )
    ap.add_argument(
        "--poprock", default="zero:msd-musicnn", help="how 4Q's Pop/Rock clips become pop or rock"
    )
    ap.add_argument("--only", choices=[h["name"] for h in HEADS], action="append")
    ap.add_argument(
        "--check", type=int, default=12, help="clips analysed through mcbr-fusion to check the cache"
    )
    ap.add_argument("--reuse-facts", action="store_true", help="the measurements of the last run (same data)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from mcbr_core.training.datasets.tags import GEMS_MOODS, GENRE_TREE, MOOD_WORDS, load_tags

    fusion = write_fusion(args.out)
    st = bench.Study(args.data)
    log.info("seeded %d clips of mcbr-fusion's cache", seed_cache(st.ds, fusion))
    check = check_seeded(st.ds, fusion, args.check) if args.check else {}
    log.info("seeded against real fusion analyses: %s", check)
    poprock_csv = Path(os.path.relpath(bench.CACHE / "poprock.csv"))  # recorded in the cards: no home folders
    split = write_poprock(st, args.poprock, poprock_csv)
    log.info("4Q Pop/Rock clips: %s (%s)", split, args.poprock)
    facts_file = bench.CACHE / "ship-facts.json"
    if args.reuse_facts and facts_file.exists():
        facts = json.loads(facts_file.read_text())
    else:
        facts = measure(st, args.poprock)
        facts_file.write_text(json.dumps(facts, indent=1, default=str))
    ds = load_tags(args.data, poprock=poprock_csv)
    args.runs.mkdir(parents=True, exist_ok=True)
    extra = {
        "genres": {"genre_tree": {k: {"tree": t, "whitelist": w} for k, (t, w) in GENRE_TREE.items()},
                   "poprock": {"strategy": args.poprock, "clips": split}},
        "moods": {"mood_words": {m: sorted(w for w, ms in MOOD_WORDS.items() if m in ms)
                                 for m in sorted({m for ms in MOOD_WORDS.values() for m in ms})},
                  "gems_moods": {e: list(ms) for e, ms in GEMS_MOODS.items()}},
    }  # fmt: skip
    for spec in HEADS:
        if args.only and spec["name"] not in args.only:
            continue
        r = ship(spec, ds, facts[spec["task"]], args.out, args.runs,
                 {"seeded_cache_check": check} | extra.get(spec["task"], {}))  # fmt: skip
        print(json.dumps(r, default=str))


if __name__ == "__main__":
    main()
