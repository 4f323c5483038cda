"""Can these clips train the model? Checked before anything is decoded or written.

:func:`check_trainable` needs at least two labels of the task, enough artists for the
artist-disjoint parts, and two labels in the training part of every fold (it draws
the split, which needs only the labels and the artists). Each failure is one
:class:`TrainingDataError` line saying what the data has and what training needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mcbr_core.training.config import TrainConfig
from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    LabelCounts,
    TaskInfo,
    TrainingDataError,
)
from mcbr_core.training.plans import encode_targets, indicators, plans
from mcbr_core.training.splits import group_key

log = logging.getLogger(__name__)

__all__ = ["check_clips", "check_trainable"]


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _where(dataset: Dataset) -> tuple[str, str]:
    """How messages name the dataset, and its clips."""
    return ("the library", "item") if dataset.name == "library" else (f"the {dataset.name} dataset", "clip")


def _listing(pairs: Sequence[tuple[str, int]], unit: str, most: int = 5) -> str:
    shown = ", ".join(f"{label}: {_count(n, unit)}" for label, n in pairs[:most])
    return shown + (f" and {len(pairs) - most} more" if len(pairs) > most else "")


def _resolve_task(dataset: Dataset, task: str) -> str:
    """:meth:`Dataset.resolve_task`, also finding a task that lost every label to ``min_count``."""
    try:
        return dataset.resolve_task(task)
    except DatasetError:
        for alt in (task, f"{task}s", task.rstrip("s")):
            if alt in dataset.label_counts:
                return alt
        raise


def _too_few_labels(dataset: Dataset, task: str) -> str:
    """The one-line message for a task with fewer than two labels left."""
    where, unit = _where(dataset)
    counts = dataset.label_counts.get(task)
    if counts is None:  # a dataset not built by finalize()
        labelled = dataset.labelled(task)
        tally: dict[str, int] = {}
        for c in labelled:
            for label in c.labels[task]:
                tally[label] = tally.get(label, 0) + 1
        counts = LabelCounts(tally, len(labelled))
    singular = task[:-1] if task.endswith("s") and task[:-1] in dataset.label_counts else task
    ranked = sorted(counts.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [(label, n) for label, n in ranked if n >= counts.min_count]
    least = f" with at least {_count(counts.min_count, unit)}" if counts.min_count > 1 else ""
    if kept:
        have = f"{len(kept)} {singular} label{'' if len(kept) == 1 else 's'}{least} ({_listing(kept, unit)})"
    else:
        have = f"no {singular} label{least}" + (f" (most: {_listing(ranked, unit, 3)})" if ranked else "")
    return f"{where} has {have} among {_count(counts.clips, 'labelled ' + unit)}; training needs at least 2 labels"


def _artists_per_label(clips: Sequence[Clip], groups: Sequence[str], task: str) -> str:
    """``"Rock: 6 artists, Jazz: 1 artist"``: the artist groups of each label, fewest first."""
    seen: dict[str, set[str]] = {}
    for c, g in zip(clips, groups, strict=True):
        for label in c.labels[task]:
            seen.setdefault(label, set()).add(g)
    ranked = sorted(((label, len(gs)) for label, gs in seen.items()), key=lambda kv: (kv[1], kv[0]))
    return _listing(ranked, "artist", 6)


def check_clips(config: TrainConfig, dataset: Dataset, task: str, info: TaskInfo, clips: list[Clip]) -> None:
    """Raise :class:`TrainingDataError` unless ``clips`` hold two labels and every training part of the split does.

    The split is drawn here exactly as the run will draw it (it needs only the labels
    and the artists), so a split that cannot train fails before any audio is decoded.
    """
    where, unit = _where(dataset)
    present = sorted({label for c in clips for label in c.labels[task]})
    if len(present) < 2:
        only = f", all {present[0]}" if present else ""
        raise TrainingDataError(f"{where} has only {_count(len(clips), 'usable ' + unit)} with {task} labels{only}; "
                                "training needs at least 2 labels")  # fmt: skip
    groups = [group_key(c.artist, c.id) for c in clips]
    what = _check_artists(config, dataset, task, clips, groups)
    y = encode_targets(clips, task, info)
    for plan in plans(config, clips, groups, indicators(y, len(info.labels))):
        seen = y[plan.train] if y.ndim == 1 else np.flatnonzero(y[plan.train].any(axis=0))  # label indices
        trained = sorted({info.labels[int(i)] for i in seen})
        if len(trained) < 2:
            part = f"fold {plan.fold}'s training part" if config.folds >= 3 else "the training part"
            raise TrainingDataError(
                f"{what} leaves {part} with {'only ' + trained[0] if trained else 'no label'}: each label needs "
                f"{unit}s of more artists ({_artists_per_label(clips, groups, task)}; "
                f"{_count(len(clips), unit)})"
            )


def _check_artists(
    config: TrainConfig, dataset: Dataset, task: str, clips: list[Clip], groups: list[str]
) -> str:
    """Raise unless there are enough artists for the artist-disjoint parts; what the split is called."""
    where, unit = _where(dataset)
    k = config.folds
    predefined = k >= 3 and all(c.fold is not None for c in clips) and len({c.fold for c in clips}) == k
    official = (
        k < 3 and {"train"} <= {c.split for c in clips} and bool({"val", "test"} & {c.split for c in clips})
    )
    if k >= 3:
        need, what = k, f"{k}-fold cross-validation"
    else:
        need = 1 + (config.val_fraction > 0) + (config.test_fraction > 0)
        what = (
            "an artist-disjoint train/validation/test split"
            if need == 3
            else "an artist-disjoint holdout split"
        )
    n_groups = len(set(groups))
    if not (predefined or official) and n_groups < need:
        raise TrainingDataError(
            f"{what} keeps each artist in one part and needs at least {need} artists "
            f"(an {unit} without one counts as its own); {where}'s {_count(len(clips), unit)} with {task} labels "
            f"have {n_groups} ({_artists_per_label(clips, groups, task)})"
        )
    return what


def check_trainable(config: TrainConfig, dataset: Dataset) -> str:
    """Check, before anything is decoded or written, that the dataset can train ``config``'s model.

    It needs at least two labels of the task (after the dataset's ``min_count``),
    enough artists for the artist-disjoint parts (``folds`` of them for k-fold
    cross-validation; train, validation and test for a holdout split), and at least
    two labels in the training part of every fold. Labels found on a single artist
    are logged: an artist-disjoint split can train or test them, not both.

    Returns
    -------
    str
        The task's name in the dataset (see :meth:`Dataset.resolve_task`).

    Raises
    ------
    TrainingDataError
        With a one-line message saying what the data has and what training needs.
    DatasetError
        If the dataset has no such task.
    """
    task = _resolve_task(dataset, config.task)
    info = dataset.tasks.get(task)
    if info is None or len(info.labels) < 2:
        raise TrainingDataError(_too_few_labels(dataset, task))
    clips = dataset.labelled(task)
    check_clips(config, dataset, task, info, clips)
    artists: dict[str, set[str]] = {}
    for c in clips:
        for label in c.labels[task]:
            artists.setdefault(label, set()).add(group_key(c.artist, c.id))
    lone = sorted(label for label, groups in artists.items() if len(groups) == 1)
    if lone:
        log.warning("%s on a single artist (%s): an artist-disjoint split trains or tests %s, not both",
                    "a label is" if len(lone) == 1 else f"{len(lone)} labels are", ", ".join(lone[:5]),
                    "it" if len(lone) == 1 else "them")  # fmt: skip
    return task
