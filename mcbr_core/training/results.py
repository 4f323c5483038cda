"""What a run returns: one :class:`FoldResult` per fold, in a :class:`RunResult` or a :class:`CVResult`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CVResult", "FoldResult", "RunResult", "mean_and_std"]


@dataclass(frozen=True)
class FoldResult:
    """The outcome of one fold (or of the single split of :func:`train`).

    Attributes
    ----------
    fold
        Fold number (0 for a single split).
    split
        How its parts were drawn (``official``, ``holdout``, ``fold 3 of 10``).
    best_epoch, epochs_run
        Epoch of the best validation macro-F1, and epochs trained in all.
    stopped_early
        Whether patience ran out.
    metrics
        :func:`mcbr_core.training.metrics.evaluate` on the test part (the validation
        part when there is no test part), plus ``loss``.
    evaluated_on
        ``"test"`` or ``"val"``.
    model_path
        The best checkpoint.
    """

    fold: int
    split: str
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    metrics: dict[str, Any]
    evaluated_on: str
    model_path: Path


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    model_path: Path
    result: FoldResult
    table: str
    skipped: list[tuple[str, str]]

    @property
    def metrics(self) -> dict[str, Any]:
        """The final evaluation's metrics."""
        return self.result.metrics


@dataclass(frozen=True)
class CVResult:
    """What :func:`cross_validate` returns."""

    run_dir: Path
    folds: list[FoldResult]
    mean: dict[str, float]
    std: dict[str, float]
    table: str
    skipped: list[tuple[str, str]]


def mean_and_std(results: list[FoldResult]) -> tuple[dict[str, float], dict[str, float]]:
    """The mean and standard deviation over folds of every numeric metric (folds without it left out)."""
    numeric = [
        k for k, v in results[0].metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    mean, std = {}, {}
    for k in numeric:
        xs = [r.metrics[k] for r in results if r.metrics.get(k) is not None]
        if xs:
            mean[k], std[k] = float(np.mean(xs)), float(np.std(xs))
    return mean, std
