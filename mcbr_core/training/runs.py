"""Run folders: where a run writes, when a folder is taken, and the metrics log.

Run folder::

    RUN/config.json                  the TrainConfig and the dataset it ran on
    RUN/metrics.jsonl                one line per epoch per fold, one per evaluation
    RUN/skipped.json                 clips left out, and why
    RUN/split.json | folds.json      which clip went where (holdout parts, or test fold)
    RUN/report.txt                   the per-fold table
    RUN/model.safetensors (+ .json)  the best model of a single run (not written by CV)
    RUN/checkpoints/fold<k>/{last,best}.safetensors (+ .json), last.state.pt
    RUN/branches/<name>/             a stacked network's trained branch: a run folder of its own

A folder is taken once it holds a checkpoint (of a fold, of a branch, or the final
model): only then does a new run of the same folder need ``resume`` (or another
folder). A run that stops before its first checkpoint removes what it wrote
(:func:`run_folder`), and a folder left without a checkpoint is started afresh.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.training.config import RESUMABLE, TrainConfig
from mcbr_core.training.datasets.base import Dataset

log = logging.getLogger(__name__)

__all__ = [
    "RUN_FILES",
    "FoldFiles",
    "MetricsLog",
    "default_dir",
    "discard",
    "has_checkpoint",
    "open_run",
    "run_folder",
    "write_json",
]

#: What a run writes into its folder (besides checkpoints/ and branches/): removed when a run ends before its first checkpoint.
RUN_FILES = ("config.json", "metrics.jsonl", "skipped.json", "split.json", "folds.json", "report.txt",
             "model.safetensors", "model.json")  # fmt: skip


@dataclass(frozen=True)
class FoldFiles:
    """A fold's checkpoints: ``RUN/checkpoints/fold<k>/``."""

    folder: Path

    @classmethod
    def of(cls, run_dir: Path, fold: int) -> FoldFiles:
        """The fold's folder (created)."""
        folder = run_dir / "checkpoints" / f"fold{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder)

    @property
    def best(self) -> Path:
        """The best epoch's model file."""
        return self.folder / "best.safetensors"

    @property
    def last(self) -> Path:
        """The last epoch's model file."""
        return self.folder / "last.safetensors"

    @property
    def state(self) -> Path:
        """The last epoch's optimizer and early-stopping state (``torch.load(weights_only=True)``)."""
        return self.folder / "last.state.pt"


class MetricsLog:
    """``metrics.jsonl``: append lines; drop a fold's lines from an epoch on (for resume)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        """Add one JSON line."""
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=json_default) + "\n")

    def truncate(self, fold: int, from_epoch: int) -> None:
        """Drop the fold's epochs from ``from_epoch`` on, its evaluation, and every summary."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            drop = rec.get("fold") == fold and (
                (rec.get("phase") == "epoch" and rec.get("epoch", -1) >= from_epoch)
                or rec.get("phase") == "eval"
            )
            if not drop and rec.get("phase") != "summary":
                keep.append(line)
        self.path.write_text("".join(f"{ln}\n" for ln in keep), encoding="utf-8")


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays, and paths."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, sorted JSON."""
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=json_default) + "\n", encoding="utf-8")


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds a checkpoint (of a fold, of a stacked network's branch, or the final model)."""
    return run_dir.is_dir() and any(run_dir.rglob("*.safetensors"))


def discard(run_dir: Path, created: Path | None) -> None:
    """Remove what a run wrote: the folders it created, else its own files in ``run_dir``."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in ("checkpoints", "branches"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def default_dir(config: TrainConfig, dataset: Dataset, task: str) -> Path:
    """``runs/<dataset>-<task>-<architecture>-s<seed>``: the run folder of a config without ``run_dir``."""
    return Path("runs") / f"{dataset.name}-{task}-{config.family}-s{config.seed}"


def _check_reopen(run_dir: Path, new: dict[str, Any], *, resume: bool) -> None:
    """Refuse a taken folder without ``resume``, or a resume with other settings; clear a folder without a checkpoint."""
    if not resume and has_checkpoint(run_dir):
        raise ConfigError(f"{run_dir} already holds a run: resume it (--resume) or choose another run folder")
    if not resume:  # a run that stopped before its first checkpoint: nothing to resume
        log.info("%s: starting afresh (the run there stopped before its first checkpoint)", run_dir)
        discard(run_dir, None)
        return
    old = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["config"]
    changed = sorted(k for k in set(old) | set(new)
                     if k not in RESUMABLE and old.get(k) != new.get(k) and k != "run_dir")  # fmt: skip
    if changed:
        raise ConfigError(
            f"{run_dir}: cannot resume with other {', '.join(changed)} than the run was started with"
        )


def open_run(
    config: TrainConfig, dataset: Dataset, task: str, *, resume: bool
) -> tuple[TrainConfig, Path, Path | None]:
    """Create (or reopen, checking the config) the run folder and write ``config.json``.

    Returns
    -------
    config
        With ``dataset`` filled in.
    run_dir
        The run folder.
    created
        The outermost folder this call created (``None``: the run folder existed).
    """
    if not config.dataset:
        config = replace(
            config, dataset={"kind": dataset.name, "root": str(dataset.root), "options": dataset.options}
        )
    run_dir = Path(config.run_dir) if config.run_dir else default_dir(config, dataset, task)
    new = config.to_dict()
    if (run_dir / "config.json").exists():
        _check_reopen(run_dir, new, resume=resume)
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": new, "dataset": {"name": dataset.name, "root": str(dataset.root), "task": task,
                                         "tasks": {k: asdict(v) for k, v in dataset.tasks.items()}}}  # fmt: skip
    (run_dir / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=json_default) + "\n",
                                         encoding="utf-8")  # fmt: skip
    return config, run_dir, created


@contextmanager
def run_folder(
    config: TrainConfig, dataset: Dataset, task: str, *, resume: bool
) -> Iterator[tuple[TrainConfig, Path]]:
    """Open the run folder for the block; if the block fails before the first checkpoint, remove what the run wrote."""
    config, run_dir, created = open_run(config, dataset, task, resume=resume)
    try:
        yield config, run_dir
    except BaseException:
        if not has_checkpoint(run_dir):
            discard(run_dir, created)
        raise
