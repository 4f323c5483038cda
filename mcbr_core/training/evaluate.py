"""``mcbr eval``: a finished model on a dataset folder, run exactly as the plugin runs it.

:func:`evaluate_model` analyses every labelled clip with the model (decoding,
analysis windows, patches, the model's own heads), maps the model's labels onto the
dataset's (:func:`map_labels`: by name, ignoring case and punctuation, within the
task's kind), and returns :func:`mcbr_core.training.metrics.evaluate`'s metrics with
``n_in_training``: how many of the evaluated clips the model was fitted on, by the
fingerprint in its card (:mod:`mcbr_core.training.fingerprint`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.errors import McbrError
from mcbr_core.tagging import kind_of

log = logging.getLogger(__name__)

__all__ = ["default_model", "evaluate_model", "map_labels"]

#: Classification metrics that mean nothing when no model output names a dataset label.
_CLASSIFICATION = ("accuracy", "macro_f1", "micro_f1", "precision_at_1", "precision_at_3", "hamming_loss",
                   "confusion", "label_precision_at_1", "label_precision_at_3")  # fmt: skip


def default_model(task: str = "genre") -> str:
    """The model whose tags the beets plugin writes by default for ``task``.

    That is the shipped clip head its ``<task>.source: auto`` picks (``mcbr-mood``,
    ``mcbr-genre``) when there is one, else its ``model`` setting's default.
    """
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.clip_head import resolve_sources
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.settings import AnalysisSettings

    model = AnalysisSettings().model
    heads = resolve_sources({task: "auto"}, read_card(resolve_model(model)))
    return heads[task][0].stem if task in heads else model


def _norm_label(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", label.casefold())


def map_labels(card_heads: dict[str, list[str]], tag_kinds: dict[str, dict[str, str]], task: str, kind: str,
              labels: Sequence[str], extra: dict[str, str]) -> dict[int, list[tuple[str, int]]]:  # fmt: skip
    """Dataset label index -> the model outputs ``(head, column)`` that name it.

    A head named like the task is used alone; otherwise every output of the task's
    kind (``genre``, ``mood``; any for ``other``) counts. ``extra`` renames model
    labels to dataset labels where the names differ beyond case and punctuation.
    """
    by_name = {_norm_label(lab): i for i, lab in enumerate(labels)}
    extra_n = {_norm_label(k): _norm_label(v) for k, v in extra.items()}
    exact = [h for h in card_heads if h == task]
    out: dict[int, list[tuple[str, int]]] = {}
    for head, names in card_heads.items():
        if exact and head not in exact:
            continue
        for j, name in enumerate(names):
            label_kind = kind_of(head, name, tag_kinds)
            if not exact and kind != "other" and label_kind != kind:
                continue
            key = _norm_label(name)
            target = by_name.get(extra_n.get(key, key))
            if target is not None:
                out.setdefault(target, []).append((head, j))
    return out


def _analyse(analyzer: Any, clips: list[Any], mapping: dict[int, list[tuple[str, int]]], n_labels: int
             ) -> tuple[list[np.ndarray], list[np.ndarray], list[Any], list[tuple[str, str]]]:  # fmt: skip
    """Each clip's scores ``(K,)`` (-1 where no output names the label) and embedding; the clips kept; the failed."""
    heads = analyzer.backend.heads
    rows, embs, kept, failed = [], [], [], []
    for n, clip in enumerate(clips, 1):
        try:
            a = analyzer.analyze(clip.path)
        except (McbrError, OSError, ValueError) as exc:
            failed.append((clip.id, str(exc)))
            continue
        row = np.full(n_labels, -1.0)
        for k, outputs in mapping.items():
            row[k] = max(a.scores[h][heads[h][j]] for h, j in outputs)
        rows.append(row)
        embs.append(a.embedding)
        kept.append(clip)
        if n % 50 == 0:
            log.info("eval: %d/%d clips", n, len(clips))
    return rows, embs, kept, failed


def evaluate_model(
    model: str,
    kind: str,
    root: Path,
    *,
    task: str = "genre",
    options: dict[str, Any] | None = None,
    split: str | None = None,
    device: str = "auto",
    label_map: dict[str, str] | None = None,
    limit: int = 0,
    threshold: float = 0.5,
    max_patches: int | None = None,
    window_patches: int | None = None,
) -> dict[str, Any]:
    """Evaluate a trained model on a dataset folder, as the plugin would run it.

    Parameters
    ----------
    model
        Shipped model name, model file, or ``"default"`` (:func:`default_model`).
    kind, root, options
        Registered dataset, its folder, loader options.
    task
        Dataset task (``genre``, ``mood``, ...).
    split
        Only clips of this official split (default: all).
    device
        Torch device.
    label_map
        Model label -> dataset label, for names that differ beyond case and punctuation.
    limit
        Evaluate at most this many clips (0: all).
    threshold
        Multi-label decision threshold.
    max_patches, window_patches
        Analysis windows (default: the plugin's), to measure their effect on accuracy.

    Returns
    -------
    dict
        The metrics of :func:`mcbr_core.training.metrics.evaluate` (classification
        metrics ``None`` when no model label matches a dataset label), plus the model,
        dataset, label coverage, skipped clips, and ``n_in_training``: how many of the
        ``n`` evaluated clips are in the model's training data (``None``: its card
        records no fingerprint of it).
    """
    from mcbr_core.analysis import Analyzer
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.settings import AnalysisSettings
    from mcbr_core.training import metrics as M
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.fingerprint import clip_hash_or_none, overlap
    from mcbr_core.training.plans import encode_targets

    t0 = time.perf_counter()
    ds = load_dataset(kind, root, **(options or {}))
    task = ds.resolve_task(task)
    info = ds.tasks[task]
    name = default_model(info.kind if info.kind != "other" else task) if model == "default" else model
    windows = {k: v for k, v in (("max_patches", max_patches), ("window_patches", window_patches)) if v}
    analyzer = Analyzer(AnalysisSettings(model=name, device=device, **windows))
    backend = analyzer.backend
    clips = ds.labelled(task, split=split)[: limit or None]
    mapping = map_labels(backend.heads, backend.tag_kinds, task, info.kind, info.labels, label_map or {})
    rows, embs, kept, failed = _analyse(analyzer, clips, mapping, len(info.labels))
    if not kept:
        raise McbrError(f"eval: none of the {len(clips)} clips could be analysed")
    # clips the model was trained on (hashed only when its card has a fingerprint to compare with)
    in_training = overlap(read_card(resolve_model(name)), (clip_hash_or_none(c.path) for c in kept))
    result = M.evaluate(encode_targets(kept, task, info), np.stack(rows), labels=list(info.labels),
                        multilabel=info.multilabel, threshold=threshold, embeddings=np.stack(embs),
                        artists=[c.artist for c in kept])  # fmt: skip
    if not mapping:
        log.warning("eval: no output of %s names a %s label of %s; only embedding metrics", name, task, kind)
        result.update({key: None for key in _CLASSIFICATION if key in result})
    return {
        "model": name,
        "model_path": str(resolve_model(name)),
        "model_id": analyzer.model_id,
        "dataset": kind,
        "root": str(root),
        "task": task,
        "multilabel": info.multilabel,
        "split": split or "all",
        **result,
        "label_coverage": {
            info.labels[k]: [backend.heads[h][j] for h, j in v] for k, v in sorted(mapping.items())
        },
        "n_failed": len(failed),
        "failed": failed[:100],
        "n_in_training": in_training,
        "seconds": round(time.perf_counter() - t0, 2),
    }
