#!/usr/bin/env python3
"""Train, measure and write the shipped mood and genre heads (``models/mcbr-*.safetensors``).

Usage::

    python tools/ship_heads.py ../shared/data --out models/

For each head it

1. cross-validates a clip-level head on msd-musicnn's clip embedding (``mcbr train
   --mode head``; 5 artist-disjoint folds, C chosen on each fold's validation part),
2. cross-validates the statistics baseline on the same folds (``--mode stats``),
3. evaluates msd-musicnn's own tags on the whole dataset (``mcbr eval``; mood tags
   mapped onto the four quadrant moods),
4. fits the shipped head on all clips (C chosen on an artist-disjoint fifth, then
   refitted on everything), and
5. writes it with a model card holding these measurements, the data, the
   fingerprint of the clips it was fitted on (``training.fingerprint``, which
   ``mcbr eval`` compares the clips it evaluates with) and the licences. The card's
   ``default_for`` lists the kind only when the head measured better than
   msd-musicnn's own tags: the plugin's ``source: auto`` follows it.

Run folders go to ``--runs`` (default ``runs/ship``); features come from the
training feature cache, so a second run takes seconds.

``--fingerprint-only`` writes the fingerprint into the cards of heads shipped before
cards had one, without retraining: the weights, and so the model ids, stay as they
are. It checks that the data folder holds as many labelled clips as the head was
fitted on (the final fit uses every clip of the dataset).
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.heads_common import argument_parser, licence_lines

#: msd-musicnn tags that name one of the 4Q quadrant moods (no tag names Q2, "tense")
MSD_TO_QUADRANT = {
    "happy": "happy", "party": "happy", "catchy": "happy",
    "sad": "sad",
    "Mellow": "calm", "chill": "calm", "chillout": "calm", "easy listening": "calm", "beautiful": "calm",
}  # fmt: skip

HEADS: list[dict[str, Any]] = [
    {
        "name": "mcbr-mood",
        "kind": "mood",
        "dataset": "4q",
        "task": "mood",
        "metric": "macro_f1",
        "tag_map": MSD_TO_QUADRANT,
        "about": "Russell's four quadrants (Panda et al.'s 4Q emotion dataset) as moods: happy (Q1: high "
        "arousal, positive valence), tense (Q2: high arousal, negative valence), sad (Q3: low arousal, "
        "negative valence), calm (Q4: low arousal, positive valence).",
        "cite": 'R. Panda, R. Malheiro, R. P. Paiva, "Novel audio features for music emotion recognition", '
        "IEEE Transactions on Affective Computing, 2018.",
    },
    {
        "name": "mcbr-genre",
        "kind": "genre",
        "dataset": "emotify",
        "task": "genre",
        "metric": "accuracy",
        "tag_map": {},
        "about": "the four genres of the Emotify dataset (Magnatune excerpts): classical, electronic, pop, rock.",
        "cite": 'A. Aljanaki, F. Wiering, R. C. Veltkamp, "Studying emotion induced by music through a '
        'crowdsourcing game", Information Processing & Management, 2016.',
    },
]

KEYS = ("accuracy", "macro_f1", "precision_at_1", "precision_at_3", "artist_precision_at_5")


def _summary(result: Any) -> dict[str, Any]:
    return {"folds": len(result.folds), "mean": {k: round(result.mean[k], 4) for k in KEYS if k in result.mean},
            "std": {k: round(result.std[k], 4) for k in KEYS if k in result.std}}  # fmt: skip


def ship(spec: dict[str, Any], data: Path, out: Path, runs: Path, workers: int) -> dict[str, Any]:
    from mcbr_core.models.checkpoint import load_model, save_model
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.evaluate import evaluate_model
    from mcbr_core.training.loop import TrainConfig, cross_validate, train

    root = data / spec["dataset"]
    ds = load_dataset(spec["dataset"], root)
    name, metric = spec["name"], spec["metric"]
    base = {"task": spec["task"], "base_model": "msd-musicnn", "num_workers": workers, "device": "cpu"}
    for sub in ("cv", "stats", "final"):
        shutil.rmtree(runs / f"{name}-{sub}", ignore_errors=True)
    cv = cross_validate(TrainConfig(mode="head", folds=5, run_dir=str(runs / f"{name}-cv"), **base), ds)
    stats = cross_validate(
        TrainConfig(mode="stats", folds=5, run_dir=str(runs / f"{name}-stats"), **base), ds
    )
    tags = evaluate_model("msd-musicnn", spec["dataset"], root, task=spec["task"], device="cpu",
                          label_map=spec["tag_map"])  # fmt: skip
    final = train(TrainConfig(mode="head", val_fraction=0.2, test_fraction=0.0, run_dir=str(runs / f"{name}-final"),
                              name=name, **base), ds)  # fmt: skip
    head_score, tags_score, stats_score = cv.mean[metric], tags[metric], stats.mean[metric]
    wins = head_score > tags_score
    tensors, card = load_model(final.model_path)
    card = {k: v for k, v in card.items() if k not in ("format", "metrics")}
    card["id"] = f"{name}-1-{card['id'].rsplit('-', 1)[-1]}"
    card["name"] = name
    card["default_for"] = [spec["kind"]] if wins else []
    card["description"] = spec["about"]
    card["metrics"] = {
        "selection_metric": metric,
        "head_cv": _summary(cv),
        "stats_baseline_cv": _summary(stats),
        "pretrained_tags": {k: (round(tags[k], 4) if tags.get(k) is not None else None) for k in KEYS}
        | {"model": "msd-musicnn", "label_coverage": tags["label_coverage"], "n": tags["n"]},
        "protocol": "5-fold artist-disjoint CV on ../shared/data (mcbr_core.training.splits.grouped_folds, seed 0); "
        "pretrained tags evaluated on every clip (they were not trained on them)",
    }
    card["licence"] = {
        "weights": "derived from data licensed for research use only; non-commercial use",
        "training_data": ds.licence,
        "base_model": "msd-musicnn (ISC, Music Technology Group, Universitat Pompeu Fabra)",
        "cite": spec["cite"],
    }
    path = save_model(out / f"{name}.safetensors", tensors, card)
    path.chmod(0o644)  # shipped in the wheel: readable by all
    _write_markdown(out / f"{name}.md", card, spec, cv, stats, tags)
    logging.getLogger("ship").info("%s: head %s %.3f, stats %.3f, msd tags %.3f -> default_for %s", name, metric,
                                   head_score, stats_score, tags_score, card["default_for"])  # fmt: skip
    return {"name": name, "path": str(path), "metric": metric, "head": head_score, "stats": stats_score,
            "tags": tags_score, "default_for": card["default_for"]}  # fmt: skip


def add_fingerprint(spec: dict[str, Any], data: Path, out: Path) -> dict[str, Any]:
    """Write ``training.fingerprint`` into a shipped head's card (and its markdown card); no retraining."""
    from mcbr_core.models.checkpoint import load_model, save_model
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.fingerprint import clip_hash, fingerprint

    ds = load_dataset(spec["dataset"], data / spec["dataset"])
    clips = ds.labelled(ds.resolve_task(spec["task"]))
    path = out / f"{spec['name']}.safetensors"
    tensors, card = load_model(path)
    fitted = card["training"]["data"]["n_train"] + card["training"]["data"]["n_val"]
    if len(clips) != fitted:
        raise SystemExit(f"{path} was fitted on {fitted} clips, but {data / spec['dataset']} has {len(clips)} "
                         f"with {spec['task']} labels: not the data it was trained on")  # fmt: skip
    card = {k: v for k, v in card.items() if k != "format"}
    card["training"]["fingerprint"] = fingerprint(clip_hash(c.path) for c in clips)
    save_model(path, tensors, card).chmod(0o644)
    md = out / f"{spec['name']}.md"
    if md.is_file():
        lines = md.read_text(encoding="utf-8").splitlines()
        lines = [ln for ln in lines if not ln.startswith("- **Training clips**")]
        at = next(i for i, ln in enumerate(lines) if ln.startswith("- **Training data**")) + 1
        lines.insert(at, _fingerprint_line(card))
        md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"name": spec["name"], "path": str(path), "clips": card["training"]["fingerprint"]["n"]}


def _fingerprint_line(card: dict[str, Any]) -> str:
    n = card["training"]["fingerprint"]["n"]
    return (
        f"- **Training clips**: the card lists a fingerprint of each of the {n} clips "
        "(`training.fingerprint`); `mcbr eval` warns when it evaluates the head on any of them."
    )


def _pct(summary: dict[str, Any], key: str) -> str:
    mean, std = summary["mean"].get(key), summary["std"].get(key)
    return "-" if mean is None else f"{mean:.3f} ± {std:.3f}"


def _write_markdown(
    path: Path, card: dict[str, Any], spec: dict[str, Any], cv: Any, stats: Any, tags: Any
) -> None:
    ((_head, labels),) = card["heads"].items()
    m = card["metrics"]
    t = m["pretrained_tags"]
    fit = card["training"].get("fit", {})
    lines = [
        f"# {card['name']} (`{card['id']}`)",
        "",
        f"A clip-level {spec['kind']} head on msd-musicnn's clip embedding: {spec['about']}",
        "",
        (
            "- **Model**: L2-regularised logistic regression (softmax over "
            f"{len(labels)} labels: {', '.join(labels)}) on the standardised 200-d msd-musicnn embedding, "
            "averaged over the analysed patches (the vector the plugin stores for `beet similar`). "
            "It shares msd-musicnn's forward pass, so it adds no analysis time. "
            f"C = {fit.get('C')} (chosen on an artist-disjoint validation fifth, then refitted on every clip)."
        ),
        (
            f"- **Training data**: `{spec['dataset']}` in `../shared/data` "
            f"({card['training']['data']['n_train'] + card['training']['data']['n_val']} clips), task `{spec['task']}`."
        ),
        _fingerprint_line(card),
        f"- **Default**: {'yes' if card['default_for'] else 'no'}: the plugin's `{spec['kind']}.source: auto` "
        + (
            "uses this head, because it measured better than msd-musicnn's own tags below."
            if card["default_for"]
            else "keeps msd-musicnn's own tags, which measured better."
        ),
        "",
        f"## Measurements (selection metric: {spec['metric']})",
        "",
        "| source | accuracy | macro-F1 | same-artist P@5 |",
        "|---|---:|---:|---:|",
        (
            f"| this head, 5-fold artist-disjoint CV | {_pct(m['head_cv'], 'accuracy')} | {_pct(m['head_cv'], 'macro_f1')} "
            f"| {_pct(m['head_cv'], 'artist_precision_at_5')} |"
        ),
        (
            f"| statistics baseline (`--mode stats`), same folds | {_pct(m['stats_baseline_cv'], 'accuracy')} "
            f"| {_pct(m['stats_baseline_cv'], 'macro_f1')} | {_pct(m['stats_baseline_cv'], 'artist_precision_at_5')} |"
        ),
        (
            f"| msd-musicnn's own tags, all {t['n']} clips | {t['accuracy']:.3f} | {t['macro_f1']:.3f} "
            f"| {t['artist_precision_at_5']:.3f} |"
        ),
        "",
        "msd-musicnn tags used for each label: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in t["label_coverage"].items())
        + (
            ". A label no tag names is never predicted by the tags."
            if len(t["label_coverage"]) < len(labels)
            else "."
        ),
        "",
        (
            "Reproduce: `python tools/ship_heads.py ../shared/data --out models/`. "
            "These are development figures: an artist-disjoint part of the dataset is held back and was not used."
        ),
        "",
        *licence_lines(card["licence"]),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argument_parser(
        __doc__,
        "the shared data folder (holds 4q/ and emotify/)",
        out=ROOT / "models",
        runs=Path("runs/ship"),
    )
    ap.add_argument("--only", choices=[h["name"] for h in HEADS], action="append")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--fingerprint-only",
        action="store_true",
        help="only write the training clips' fingerprint into the existing cards (no retraining)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    for spec in HEADS:
        if args.only and spec["name"] not in args.only:
            continue
        if args.fingerprint_only:
            r = add_fingerprint(spec, args.data, args.out)
            print(f"{r['name']}: fingerprint of {r['clips']} training clips -> {r['path']}")
            continue
        args.runs.mkdir(parents=True, exist_ok=True)
        r = ship(spec, args.data, args.out, args.runs, args.workers)
        print(f"{r['name']}: {r['metric']} head {r['head']:.3f} | stats {r['stats']:.3f} | msd-musicnn tags "
              f"{r['tags']:.3f} -> default_for {r['default_for']} ({r['path']})")  # fmt: skip


if __name__ == "__main__":
    main()
