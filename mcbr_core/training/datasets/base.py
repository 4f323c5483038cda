"""What every dataset loader returns: clips with labels per task, and the tasks' vocabularies.

A loader reads one dataset in its real on-disk layout and returns a :class:`Dataset`:
a list of :class:`Clip` (an audio file, its artist, its labels per task, its official
split or fold where the dataset defines one) and a :class:`TaskInfo` per task (the
label vocabulary, single- or multi-label, and whether the labels are genres or moods).

Loaders are registered through the ``register_datasets`` hook as
``factory(root: Path, **options) -> Dataset`` (see ``builtin.py``). They import
nothing heavy: no numpy, no torch, no pandas.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcbr_core.errors import McbrError

__all__ = [
    "AUDIO_EXTENSIONS",
    "Clip",
    "Dataset",
    "DatasetError",
    "LabelCounts",
    "TaskInfo",
    "TaskSpec",
    "TrainingDataError",
    "finalize",
    "read_csv",
    "split_multi",
]

#: Audio suffixes a loader accepts where a layout does not fix one.
AUDIO_EXTENSIONS = (".wav", ".au", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aiff", ".aif")

#: Canonical split names; loaders map their dataset's own names onto these.
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}  # fmt: skip


class DatasetError(McbrError):
    """A dataset folder is missing files, or its metadata cannot be read."""


class TrainingDataError(DatasetError):
    """The labelled clips cannot train the requested model (too few labels, artists or clips for the split)."""


@dataclass(frozen=True)
class Clip:
    """One audio file of a dataset.

    Attributes
    ----------
    id
        Unique within the dataset (e.g. ``"blues.00012"``, an FMA track id).
    path
        The audio file.
    artist
        Artist id or name; ``None`` where the dataset does not say. Artist-disjoint
        folds and the same-artist precision use it.
    labels
        Task -> labels, e.g. ``{"genre": ("rock",), "mood": ("Q1",)}``. A single-label
        task has exactly one label; a clip without labels for a task is absent here.
    split
        ``"train"``, ``"val"`` or ``"test"`` where the dataset has an official split.
    fold
        Predefined cross-validation fold (GTZAN's 10 folds), else ``None``.
    extra
        Anything else the metadata holds (title, album, year, related artists, ...).
    """

    id: str
    path: Path
    artist: str | None = None
    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    split: str | None = None
    fold: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"clip {self.id}: split must be one of {SPLITS}, got {self.split!r}")


@dataclass(frozen=True)
class TaskInfo:
    """One prediction task of a dataset.

    Attributes
    ----------
    labels
        The vocabulary, in output order (sorted).
    multilabel
        Several labels per clip (sigmoid outputs) rather than exactly one (softmax).
    kind
        ``"genre"``, ``"mood"`` or ``"other"``: which beets field a model trained on
        this task writes (``tag_kinds`` in the model card).
    """

    labels: tuple[str, ...]
    multilabel: bool = False
    kind: str = "other"

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.kind not in ("genre", "mood", "other"):
            raise ValueError(f"task kind must be genre, mood or other, got {self.kind!r}")


@dataclass(frozen=True)
class TaskSpec:
    """How :func:`finalize` builds a task: multi-label or not, its kind, its long-tail cut."""

    multilabel: bool = False
    kind: str = "other"
    min_count: int = 1  # labels on fewer clips are dropped (multi-label long tails, user tags)


@dataclass(frozen=True)
class LabelCounts:
    """A task's labels before :func:`finalize` drops the rare ones (for messages about too little data).

    Attributes
    ----------
    counts
        Label -> clips carrying it, before the ``min_count`` cut.
    clips
        Clips with at least one label of the task, before the cut.
    min_count
        Labels on fewer clips were dropped.
    """

    counts: Mapping[str, int]
    clips: int
    min_count: int = 1


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes
    ----------
    name
        Registered dataset kind (``"gtzan"``, ``"fma"``, ...).
    root
        The folder it was read from.
    clips
        Every usable clip (files without audio are in ``skipped``).
    tasks
        Task name -> :class:`TaskInfo`.
    licence
        Licence of the data, copied into the model cards of models trained on it.
    skipped
        ``(clip id or path, reason)`` for each entry left out.
    options
        The loader options it was read with (recorded in run folders).
    label_counts
        Task -> its labels before the ``min_count`` cut (also for a task that lost
        every label to it, and is therefore absent from ``tasks``).
    """

    name: str
    root: Path
    clips: list[Clip]
    tasks: dict[str, TaskInfo]
    licence: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    label_counts: dict[str, LabelCounts] = field(default_factory=dict)

    def resolve_task(self, task: str) -> str:
        """The task's name in this dataset: itself, else its multi-label plural (``genre`` -> ``genres``).

        Raises
        ------
        DatasetError
            If the dataset has no such task.
        """
        if task in self.tasks:
            return task
        for alt in (f"{task}s", task.rstrip("s")):
            if alt in self.tasks:
                return alt
        known = ", ".join(self.tasks) or "none"
        raise DatasetError(f"{self.name}: no task {task!r} (tasks: {known})")

    def labelled(self, task: str, *, split: str | None = None) -> list[Clip]:
        """Clips with labels for ``task`` (optionally of one official split)."""
        return [c for c in self.clips if c.labels.get(task) and (split is None or c.split == split)]

    def summary(self) -> str:
        """One line per task: clips, labels, single/multi."""
        lines = [f"{self.name} ({self.root}): {len(self.clips)} clips, {len(self.skipped)} skipped"]
        for name, info in self.tasks.items():
            n = len(self.labelled(name))
            mode = "multi-label" if info.multilabel else "single-label"
            lines.append(f"  {name}: {n} clips, {len(info.labels)} labels, {mode} ({info.kind})")
        return "\n".join(lines)


def canonical_split(value: str | None) -> str | None:
    """Map a dataset's split name (``training``, ``validation``, ...) to train/val/test."""
    if value is None:
        return None
    value = value.strip().lower()
    if not value:
        return None
    try:
        return _SPLIT_ALIASES[value]
    except KeyError:
        raise DatasetError(
            f"unknown split name {value!r} (known: {', '.join(sorted(_SPLIT_ALIASES))})"
        ) from None


def split_multi(value: str | Sequence[str] | None, separators: str = "|;") -> tuple[str, ...]:
    """Split a multi-valued cell (``"a|b"``, ``"a; b"``) into stripped, unique, non-empty values."""
    if value is None:
        return ()
    if isinstance(value, str):
        parts = re.split("|".join(re.escape(s) for s in separators), value) if separators else [value]
    else:
        parts = [str(v) for v in value]
    seen: dict[str, None] = {}
    for p in parts:
        p = p.strip()
        if p:
            seen.setdefault(p, None)
    return tuple(seen)


def read_csv(path: Path, *, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    """Rows of a CSV file as dicts, with header names and values stripped of spaces.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable.
    """
    try:
        with path.open(newline="", encoding=encoding, errors="replace") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            return [{k: (v.strip() if v is not None else "") for k, v in zip(header, row, strict=False)}
                    for row in reader if any(cell.strip() for cell in row)]  # fmt: skip
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from None


def require(row: Mapping[str, str], columns: Iterable[str], *, source: Path) -> None:
    """Raise ``DatasetError`` naming the columns a CSV lacks."""
    missing = [c for c in columns if c not in row]
    if missing:
        raise DatasetError(f"{source}: missing column(s) {', '.join(missing)} (has: {', '.join(row)})")


def finalize(
    name: str,
    root: Path,
    clips: list[Clip],
    specs: Mapping[str, TaskSpec],
    *,
    licence: str = "",
    skipped: list[tuple[str, str]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Dataset:
    """Build the tasks' vocabularies from the clips and drop labels below each task's ``min_count``.

    Single-label tasks keep one label per clip (a clip whose label is dropped loses
    the task). Labels are sorted, so a dataset always gives the same output order.

    Raises
    ------
    DatasetError
        If two clips share an id, or no clip is left.
    """
    dup = [cid for cid, n in Counter(c.id for c in clips).items() if n > 1]
    if dup:
        raise DatasetError(f"{name}: duplicate clip ids {dup[:5]}")
    tasks: dict[str, TaskInfo] = {}
    keep: dict[str, set[str]] = {}
    before: dict[str, LabelCounts] = {}
    for task, spec in specs.items():
        counts = Counter(label for c in clips for label in c.labels.get(task, ()))
        kept = {label for label, n in counts.items() if n >= max(spec.min_count, 1)}
        keep[task] = kept
        before[task] = LabelCounts(
            dict(counts), sum(1 for c in clips if c.labels.get(task)), max(spec.min_count, 1)
        )
        if kept:
            tasks[task] = TaskInfo(tuple(sorted(kept)), multilabel=spec.multilabel, kind=spec.kind)
    if not clips:
        detail = f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DatasetError(f"{name}: no usable clips under {root}{detail}")
    out = []
    for c in clips:
        labels = {}
        for task, values in c.labels.items():
            if task not in specs:
                continue
            values = tuple(v for v in values if v in keep[task])
            if not specs[task].multilabel:
                values = values[:1]
            if values:
                labels[task] = values
        out.append(replace(c, labels=labels))
    return Dataset(
        name=name,
        root=Path(root),
        clips=out,
        tasks=tasks,
        licence=licence,
        skipped=list(skipped or []),
        options=dict(options or {}),
        label_counts=before,
    )
