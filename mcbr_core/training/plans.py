"""Split plans: which clips a fold trains, validates and tests on.

A single run uses the dataset's official split when it has one (carving an
artist-disjoint validation part out of its training part when it lacks one), else an
artist-disjoint holdout; k-fold cross-validation tests fold ``f``, validates on fold
``f + 1`` and trains on the rest, with the dataset's own folds when it has exactly
``k`` of them. The splitting itself is :mod:`mcbr_core.training.splits`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcbr_core.training.config import TrainConfig
from mcbr_core.training.datasets.base import Clip, TaskInfo
from mcbr_core.training.splits import grouped_folds, holdout_split

__all__ = ["Plan", "encode_targets", "fold_plans", "holdout_plan", "indicators", "plans"]


@dataclass(frozen=True)
class Plan:
    """One fold's parts, as indices into the run's clips.

    Attributes
    ----------
    fold
        Fold number (0 for a single split).
    split
        How the parts were drawn (``official``, ``holdout (...)``, ``fold 3 of 10 (...)``).
    train, val, test : np.ndarray [shape=(n_part,), dtype=int]
        Clip indices; ``val`` or ``test`` may be empty.
    """

    fold: int
    split: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self, clips: Sequence[Clip]) -> dict[str, str]:
        """Clip id -> ``"train"``, ``"val"`` or ``"test"`` (``RUN/split.json``)."""
        return {clips[int(i)].id: name for name in ("train", "val", "test") for i in getattr(self, name)}


def encode_targets(clips: Sequence[Clip], task: str, info: TaskInfo) -> np.ndarray:
    """Class indices ``[shape=(n,)]`` int64, or multi-label indicators ``[shape=(n, K)]`` float32."""
    index = {label: i for i, label in enumerate(info.labels)}
    if info.multilabel:
        y = np.zeros((len(clips), len(index)), dtype=np.float32)
        for i, c in enumerate(clips):
            y[i, [index[v] for v in c.labels[task]]] = 1.0
        return y
    return np.array([index[c.labels[task][0]] for c in clips], dtype=np.int64)


def indicators(y: np.ndarray, n_labels: int) -> np.ndarray:
    """Targets ``(n,)`` or ``(n, K)`` -> ``(n, K)`` label indicators (for stratified splitting)."""
    if y.ndim == 2:
        return y
    out = np.zeros((len(y), n_labels), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def plans(
    config: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray
) -> list[Plan]:
    """The folds of a cross-validation (``folds >= 3``), else the one holdout plan.

    ``targets`` ``[shape=(n_clips, n_labels)]`` are the label indicators the parts are stratified on.
    """
    if config.folds >= 3:
        return fold_plans(config, clips, groups, targets)
    return [holdout_plan(config, clips, groups, targets)]


def holdout_plan(c: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray) -> Plan:
    """The official split, else an artist-disjoint, stratified holdout."""
    splits = np.array([clip.split for clip in clips], dtype=object)
    if (splits == "train").any() and ((splits == "val") | (splits == "test")).any():
        train, val, test = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
        if not len(val) and c.val_fraction > 0:
            # carve an artist-disjoint validation part out of the official training part
            parts = holdout_split([groups[i] for i in train], targets[train],
                                  val_fraction=c.val_fraction, test_fraction=0.0, seed=c.seed)  # fmt: skip
            train, val = train[parts == "train"], train[parts == "val"]
        return Plan(0, "official", train, val, test)
    parts = holdout_split(
        groups, targets, val_fraction=c.val_fraction, test_fraction=c.test_fraction, seed=c.seed
    )
    name = f"holdout (val {c.val_fraction:g}, test {c.test_fraction:g}, artist-disjoint)"
    return Plan(0, name, *(np.flatnonzero(parts == s) for s in ("train", "val", "test")))


def fold_plans(
    config: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray
) -> list[Plan]:
    """k plans: fold ``f`` tests, fold ``f + 1`` validates (early stopping), the others train."""
    k = config.folds
    predefined = [c.fold for c in clips]
    if all(f is not None for f in predefined) and len(set(predefined)) == k:
        names = sorted(set(predefined))
        folds = np.array([names.index(f) for f in predefined])
        how = "predefined"
    else:
        folds = grouped_folds(groups, targets, k, seed=config.seed)
        how = "artist-disjoint"
    out = []
    for f in range(k):
        val_fold = (f + 1) % k
        train = np.flatnonzero((folds != f) & (folds != val_fold))
        out.append(Plan(f, f"fold {f} of {k} ({how}; validation: fold {val_fold})", train,
                        np.flatnonzero(folds == val_fold), np.flatnonzero(folds == f)))  # fmt: skip
    return out
