"""Evaluation metrics (numpy only), and the per-fold table of the reports.

Conventions
-----------
``y`` is either label indices ``(n,)`` (single-label tasks) or indicators ``(n, K)``
(multi-label). ``scores`` are ``(n, K)`` probabilities or logits, higher is more likely.

accuracy
    single-label: top-1 prediction correct; multi-label: exact set match of the
    thresholded predictions (subset accuracy).
precision@k
    share of clips with a true label among the ``k`` best-scored labels. For
    single-label tasks this is Xing et al.'s "precision at rank k" (top-k accuracy).
    Multi-label reports also give ``label_precision_at_k`` = mean |top-k ∩ true| / k.
F1 micro / macro
    over the one-hot (single-label: argmax) or thresholded (multi-label) predictions;
    macro averages over the labels present in the truth or the predictions (a label a
    fold never sees would otherwise count as 0).
Hamming loss
    single-label: share of wrong predictions; multi-label: share of wrong label bits.
confusion
    single-label: ``K x K`` counts, rows true, columns predicted; multi-label: per
    label ``[[tn, fp], [fn, tp]]``.
k-NN label precision@k
    for each clip, the share of its ``k`` nearest other clips (cosine similarity of the
    embeddings, the query excluded) that share a label with it.
same-artist precision@k
    the same with "has the same artist"; only clips whose artist has another clip in
    the set are queries (``None`` when there is none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "f1_scores",
    "format_fold_table",
    "hamming_loss",
    "knn_label_precision",
    "nearest_neighbours",
    "precision_at_k",
    "same_artist_precision",
]


def _indicators(y: np.ndarray, n_labels: int) -> np.ndarray:
    """Indices ``(n,)`` or indicators ``(n, K)`` -> bool indicators ``(n, K)``."""
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape[1] != n_labels:
            raise ValueError(f"indicators have {y.shape[1]} labels, scores {n_labels}")
        return y.astype(bool)
    out = np.zeros((len(y), n_labels), dtype=bool)
    out[np.arange(len(y)), y.astype(np.int64)] = True
    return out


def _predictions(scores: np.ndarray, *, multilabel: bool, threshold: float) -> np.ndarray:
    """Predicted indicators ``(n, K)``: argmax one-hot, or scores above ``threshold``."""
    scores = np.asarray(scores, dtype=np.float64)
    if multilabel:
        return scores >= threshold
    return _indicators(scores.argmax(axis=1), scores.shape[1])


def accuracy(y: np.ndarray, scores: np.ndarray, *, multilabel: bool = False, threshold: float = 0.5) -> float:
    """Top-1 accuracy (single-label) or subset accuracy (multi-label)."""
    scores = np.asarray(scores)
    truth = _indicators(y, scores.shape[1])
    pred = _predictions(scores, multilabel=multilabel, threshold=threshold)
    if multilabel:
        return float((truth == pred).all(axis=1).mean()) if len(truth) else math.nan
    return float(truth[np.arange(len(truth)), scores.argmax(axis=1)].mean()) if len(truth) else math.nan


def precision_at_k(y: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of clips with a true label among the ``k`` best-scored labels."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = _indicators(y, scores.shape[1])
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (n, k)
    return float(np.take_along_axis(truth, top, axis=1).any(axis=1).mean()) if len(truth) else math.nan


def label_precision_at_k(y: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean over clips of |top-k ∩ true labels| / k (multi-label ranking precision)."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = _indicators(y, scores.shape[1])
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.take_along_axis(truth, top, axis=1).sum(axis=1).mean() / k) if len(truth) else math.nan


def f1_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Micro and macro F1 of bool indicator matrices ``(n, K)``.

    Macro averages over labels present in ``truth`` or ``pred``.
    """
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (truth & pred).sum(axis=0).astype(np.float64)
    fp = (~truth & pred).sum(axis=0).astype(np.float64)
    fn = (truth & ~pred).sum(axis=0).astype(np.float64)
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / denom) if denom else 0.0
    present = (tp + fp + fn) > 0
    if not present.any():
        return micro, 0.0
    per_label = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return micro, float(per_label.mean())


def hamming_loss(truth: np.ndarray, pred: np.ndarray, *, multilabel: bool) -> float:
    """Share of wrong predictions (single-label) or wrong label bits (multi-label)."""
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    if not len(truth):
        return math.nan
    if multilabel:
        return float((truth != pred).mean())
    return float((truth != pred).any(axis=1).mean())


def confusion_matrix(y: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """``(K, K)`` counts of single-label predictions: rows true label, columns predicted."""
    out = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(out, (np.asarray(y, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return out


def multilabel_confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(K, 2, 2)``: per label ``[[tn, fp], [fn, tp]]``."""
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    tn = (~truth & ~pred).sum(axis=0)
    fp = (~truth & pred).sum(axis=0)
    fn = (truth & ~pred).sum(axis=0)
    tp = (truth & pred).sum(axis=0)
    return np.stack([np.stack([tn, fp], axis=1), np.stack([fn, tp], axis=1)], axis=1).astype(np.int64)


def nearest_neighbours(embeddings: np.ndarray, k: int, *, chunk: int = 1024) -> np.ndarray:
    """Indices of each row's ``k`` most cosine-similar other rows, best first.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, D)]
    k
        Neighbours per row (at most ``n - 1``).

    Returns
    -------
    np.ndarray [shape=(n, min(k, n - 1)), dtype=int]
        Ties go to the lower index; a row is never its own neighbour.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), dtype=np.int64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        sim = x[start : start + chunk] @ x.T  # (c, n)
        rows = np.arange(sim.shape[0])
        sim[rows, start + rows] = -np.inf  # the query itself
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # (c, k)
        out[start : start + chunk] = order
    return out


def knn_label_precision(
    embeddings: np.ndarray, y: np.ndarray, k: int = 10, *, n_labels: int | None = None
) -> float:
    """Mean share of each clip's ``k`` nearest neighbours that share a label with it."""
    y = np.asarray(y)
    n_labels = n_labels or (y.shape[1] if y.ndim == 2 else int(y.max()) + 1 if len(y) else 1)
    truth = _indicators(y, n_labels)
    nn = nearest_neighbours(embeddings, k)
    if nn.shape[1] == 0:
        return math.nan
    shared = (truth[nn] & truth[:, None, :]).any(axis=2)  # (n, k)
    has = truth.any(axis=1)
    return float(shared[has].mean()) if has.any() else math.nan


def same_artist_precision(embeddings: np.ndarray, artists: Sequence[str | None], k: int = 5) -> float | None:
    """Mean share of same-artist clips among each clip's ``k`` nearest neighbours.

    Queries are the clips whose artist has at least one other clip here; clips
    without an artist are never "the same". ``None`` when no clip qualifies.
    """
    keys = np.array([a if a else f"\0{i}" for i, a in enumerate(artists)], dtype=object)
    _, inverse, counts = np.unique(keys.astype(str), return_inverse=True, return_counts=True)
    query = counts[inverse] > 1
    if not query.any():
        return None
    nn = nearest_neighbours(embeddings, k)
    if nn.shape[1] == 0:
        return None
    same = inverse[nn] == inverse[:, None]  # (n, k)
    return float(same[query].mean())


def evaluate(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    labels: Sequence[str],
    multilabel: bool,
    threshold: float = 0.5,
    embeddings: np.ndarray | None = None,
    artists: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Every metric of a task in one JSON-ready dict.

    Parameters
    ----------
    y
        Indices ``(n,)`` or indicators ``(n, K)``.
    scores : np.ndarray [shape=(n, K)]
    labels
        The ``K`` label names (for the confusion matrix).
    multilabel
        Threshold the scores instead of taking the argmax.
    embeddings : np.ndarray [shape=(n, D)], optional
        For the k-NN label precision@10 and the same-artist precision@5.
    artists
        One artist (or ``None``) per clip, for the same-artist precision.

    Returns
    -------
    dict
        ``n, labels, accuracy, macro_f1, micro_f1, precision_at_1, precision_at_3,
        hamming_loss, confusion`` (+ ``label_precision_at_1/3`` when multi-label), and
        ``knn_label_precision_at_10``, ``artist_precision_at_5`` (``None`` without
        embeddings or artists).
    """
    scores = np.asarray(scores, dtype=np.float64)
    K = len(labels)
    if scores.ndim != 2 or scores.shape[1] != K:
        raise ValueError(f"scores must be (n, {K}), got {scores.shape}")
    truth = _indicators(y, K)
    pred = _predictions(scores, multilabel=multilabel, threshold=threshold)
    micro, macro = f1_scores(truth, pred)
    out: dict[str, Any] = {
        "n": len(truth),
        "labels": list(labels),
        "accuracy": accuracy(y, scores, multilabel=multilabel, threshold=threshold),
        "macro_f1": macro,
        "micro_f1": micro,
        "precision_at_1": precision_at_k(truth, scores, 1),
        "precision_at_3": precision_at_k(truth, scores, 3),
        "hamming_loss": hamming_loss(truth, pred, multilabel=multilabel),
    }
    if multilabel:
        out["label_precision_at_1"] = label_precision_at_k(truth, scores, 1)
        out["label_precision_at_3"] = label_precision_at_k(truth, scores, 3)
        out["confusion"] = multilabel_confusion(truth, pred).tolist()
    else:
        out["confusion"] = confusion_matrix(truth.argmax(axis=1), scores.argmax(axis=1), K).tolist()
    out["knn_label_precision_at_10"] = None
    out["artist_precision_at_5"] = None
    if embeddings is not None and len(truth) > 1:
        out["knn_label_precision_at_10"] = knn_label_precision(embeddings, truth, 10)
        if artists is not None:
            out["artist_precision_at_5"] = same_artist_precision(embeddings, artists, 5)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


#: Columns of the per-fold table: key, header, scale, format.
TABLE_COLUMNS: tuple[tuple[str, str, float, str], ...] = (
    ("loss", "loss", 1.0, "{:.2f}"),
    ("precision_at_1", "precision@1[%]", 100.0, "{:.1f}"),
    ("precision_at_3", "precision@3[%]", 100.0, "{:.1f}"),
    ("accuracy", "accuracy[%]", 100.0, "{:.1f}"),
    ("micro_f1", "F1-micro[%]", 100.0, "{:.1f}"),
    ("macro_f1", "F1-macro[%]", 100.0, "{:.1f}"),
    ("hamming_loss", "Hamming", 1.0, "{:.3f}"),
    ("knn_label_precision_at_10", "kNN-P@10[%]", 100.0, "{:.1f}"),
    ("artist_precision_at_5", "artist-P@5[%]", 100.0, "{:.1f}"),
)


def format_fold_table(rows: Sequence[Mapping[str, Any]], *, architecture: str = "") -> str:
    """A per-fold table like Xing et al.'s Table 1, with mean and standard deviation rows.

    Parameters
    ----------
    rows
        One metrics dict per fold (keys as :func:`evaluate` gives, plus ``fold`` and
        ``loss``); missing or ``None`` values print as ``-``.
    architecture
        Printed in every row.
    """
    cols = [c for c in TABLE_COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    arch_w = max(len("architecture"), len(architecture))
    header = ["fold".ljust(5), "architecture".ljust(arch_w), *(c[1].rjust(max(len(c[1]), 6)) for c in cols)]
    lines = ["  ".join(header)]

    def fmt(value: Any, col: tuple[str, str, float, str]) -> str:
        text = "-" if value is None else col[3].format(value * col[2])
        return text.rjust(max(len(col[1]), 6))

    for r in rows:
        fold = str(r.get("fold", ""))
        lines.append(
            "  ".join([fold.ljust(5), architecture.ljust(arch_w), *(fmt(r.get(c[0]), c) for c in cols)])
        )
    if len(rows) > 1:
        for name, fn in (("mean", np.mean), ("std", np.std)):
            vals = []
            for c in cols:
                xs = [r[c[0]] for r in rows if r.get(c[0]) is not None]
                vals.append(fmt(float(fn(xs)) if xs else None, c))
            lines.append("  ".join([name.ljust(5), "".ljust(arch_w), *vals]))
    return "\n".join(lines)
