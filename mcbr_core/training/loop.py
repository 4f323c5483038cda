"""One training loop for every model, split and resume case.

:func:`train` fits one model on a dataset's official split (or an artist-disjoint
holdout), :func:`cross_validate` fits one per artist-disjoint fold; both run the
same per-fold loop (:func:`_run_fold`), which also resumes an interrupted run and
stops early on the validation macro-F1.

Four modes share it:

``net``
    a paper architecture (``mcbr_core.models.registry``) on a registered feature
    extractor's output, trained with AdamW on random fixed-length crops and evaluated
    on whole clips (the mean of the per-patch probabilities, as the plugin does).
``probe``
    a dense head (linear, or one hidden layer) on a frozen pretrained model's
    per-patch embedding (e.g. msd-musicnn's penultimate layer): the "linear probe".
``head``
    L2-regularised logistic regression on the frozen pretrained model's *clip*
    embedding: the mean of its per-patch embeddings over the plugin's analysis
    windows, exactly the vector the plugin stores for similarity. The strength ``C``
    is chosen on the validation part from a grid, then the head is refitted on
    training + validation; the test part is never seen. The shipped mood and genre
    models are heads: they share the default model's forward pass (see
    :mod:`mcbr_core.models.clip_head`).
``stats``
    logistic regression (scikit-learn) on MFCC / chroma / spectral-contrast means and
    standard deviations (the ``mcbr-stats`` extractor): the linear baseline.

Every mode saves the same kind of model file (safetensors + model card) that the
``trained`` backend runs, so any of them plugs into the beets plugin.

Run folder::

    RUN/config.json                  the TrainConfig and the dataset it ran on
    RUN/metrics.jsonl                one line per epoch per fold, one per evaluation
    RUN/skipped.json                 clips left out, and why
    RUN/split.json | folds.json      which clip went where (holdout parts, or test fold)
    RUN/report.txt                   the per-fold table
    RUN/model.safetensors (+ .json)  the best model of a single run (not written by CV)
    RUN/checkpoints/fold<k>/{last,best}.safetensors (+ .json), last.state.pt

Before anything is decoded or written, :func:`check_trainable` checks that the
labelled clips can train the model: at least two labels, enough artists for the
artist-disjoint parts, and at least two labels in every training part (it draws the
split, which needs only the labels and artists). The run folder is created after
that check. A folder holds a run once it holds a checkpoint: only then does a new
run of the same folder need ``resume`` (or another folder). A run that stops before
its first checkpoint (an error, Ctrl-C while the features are computed) removes what
it wrote, and a folder it left without a checkpoint is started afresh.

Every model card lists the clips of its training and validation parts under
``training.fingerprint`` (see :mod:`mcbr_core.training.fingerprint`), so that
``mcbr eval`` can warn when it evaluates a model on its own training data.

Runs are seeded (python, numpy, torch, DataLoader order, crops, workers): every
epoch draws from generators seeded by ``(seed, fold, epoch)``, so a resumed run on
the CPU ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import random
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.trained import STATE_PREFIX
from mcbr_core.errors import ConfigError
from mcbr_core.settings import from_mapping
from mcbr_core.training import metrics as M
from mcbr_core.training.cache import EmbeddingSource, ExtractorSource, FeatureCache, FramesSource, random_crop
from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    LabelCounts,
    TaskInfo,
    TrainingDataError,
)
from mcbr_core.training.fingerprint import clip_hash, fingerprint
from mcbr_core.training.splits import group_key, grouped_folds, holdout_split

log = logging.getLogger(__name__)

__all__ = ["CVResult", "FoldResult", "RunResult", "TrainConfig", "check_trainable", "cross_validate", "run",
           "seed_everything", "train"]

MODES = ("net", "probe", "head", "stats")
#: C values a ``head`` chooses from on the validation part (arch option ``C`` overrides).
HEAD_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
CLIP_MODES = ("head", "stats")  # modes fitted in closed form on one vector per clip
#: Config fields a resumed run may change.
RESUMABLE = frozenset({"epochs", "patience", "min_delta", "num_workers", "device", "amp", "cache_dir"})
PRECISE_BN_BATCHES = 100  # batches of training crops that re-estimate BatchNorm statistics after each epoch
NORM_SAMPLE = 512  # clips the normalisation statistics are fitted on (a seeded sample of the training part)
#: What a run writes into its folder (besides checkpoints/ and branches/): removed when a run ends before its first checkpoint.
RUN_FILES = ("config.json", "metrics.jsonl", "skipped.json", "split.json", "folds.json", "report.txt",
             "model.safetensors", "model.json")  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (written to ``RUN/config.json``).

    Attributes
    ----------
    task
        Dataset task (``genre``, ``mood``, ``genres``, ``quadrant``, ...; a missing
        singular falls back to its plural).
    mode
        ``net``, ``probe``, ``head`` or ``stats`` (see the module docstring).
    architecture, arch_options
        Network name and extra config (``net``); ``hidden``/``dropout`` of the head
        (``probe``); ``C`` (a number, or a list to choose from on the validation
        part) and ``max_iter`` of the logistic regression (``head``, ``stats``).
    features, feature_options
        Registered extractor (``net``; ``stats`` always uses ``mcbr-stats``) and its
        options.
    base_model
        Pretrained model whose embedding a probe or head reads.
    epochs, batch_size, lr, weight_decay
        AdamW training.
    patience, min_delta
        Stop after ``patience`` epochs without the validation macro-F1 improving by
        more than ``min_delta`` (0 = never stop early).
    seed
        Seeds everything.
    folds
        0: the dataset's official split, else an artist-disjoint holdout;
        k >= 3: artist-disjoint k-fold cross-validation (:func:`cross_validate`).
    val_fraction, test_fraction
        Sizes of the holdout parts when the dataset has no official split.
    patch_seconds, patch_hop_seconds
        Training crop length (0: the architecture's default ``n_frames``, e.g. 30 s
        for Whitell's and Tower's networks; 30 s for one without), and the hop of
        the evaluation (and inference) patches (0: the crop length); ``net`` mode only.
    max_seconds
        Decode only the middle ``max_seconds`` of each file (0 = all).
    threshold
        Probability above which a multi-label prediction counts.
    device, amp
        ``auto``/``cpu``/``cuda``/``mps``; mixed precision (CUDA only).
    num_workers
        DataLoader workers, and processes computing features.
    cache_dir
        Feature cache (empty: ``$MCBR_CACHE`` or ``~/.cache/mcbr``).
    run_dir, name
        Run folder (empty: ``runs/<dataset>-<task>-<arch>-s<seed>``) and model name
        (empty: the run folder's name).
    dataset
        ``{"kind", "root", "options"}`` of the dataset (filled in from it when empty).
    """

    task: str = "genre"
    mode: str = "net"
    architecture: str = "whitell_time"
    arch_options: dict[str, Any] = field(default_factory=dict)
    features: str = "whitell-mel"
    feature_options: dict[str, Any] = field(default_factory=dict)
    base_model: str = "msd-musicnn"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    min_delta: float = 0.0
    seed: int = 0
    folds: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    patch_seconds: float = 0.0
    patch_hop_seconds: float = 0.0
    max_seconds: float = 0.0
    threshold: float = 0.5
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    cache_dir: str = ""
    run_dir: str = ""
    name: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"train: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"train: {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("patience", "num_workers", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"train: {name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.folds in (1, 2) or self.folds < 0:
            raise ConfigError(f"train: folds must be 0 (a single split) or >= 3 (one fold tests, the next validates, "
                              f"the others train), got {self.folds}")  # fmt: skip
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("train: lr must be > 0 and weight_decay >= 0")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise ConfigError("train: val_fraction and test_fraction must be in [0, 1) and sum below 1")
        if self.patch_seconds < 0 or self.patch_hop_seconds < 0 or self.max_seconds < 0:
            raise ConfigError("train: patch_seconds, patch_hop_seconds and max_seconds must be >= 0")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"train: threshold must be in (0, 1), got {self.threshold}")
        for name in ("arch_options", "feature_options", "dataset"):
            if not isinstance(getattr(self, name), dict):
                object.__setattr__(self, name, dict(getattr(self, name)))
        if self.mode in CLIP_MODES:
            _c_grid(self)  # fail now, not after the features are computed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from plain values, rejecting unknown keys."""
        return from_mapping(cls, data, where="train config")

    @property
    def row_name(self) -> str:
        """What the per-fold table calls this model."""
        if self.mode == "probe":
            hidden = self.arch_options.get("hidden")
            return f"probe({self.base_model}{f', hidden {hidden}' if hidden else ''})"
        if self.mode == "head":
            return f"head({self.base_model})"
        if self.mode == "stats":
            return "logreg(mcbr-stats)"
        return self.architecture

    @property
    def family(self) -> str:
        """The architecture name written to the model card."""
        from mcbr_core.backends.trained import DENSE_HEAD

        return self.architecture if self.mode == "net" else DENSE_HEAD


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


# -- seeding ---------------------------------------------------------------------------


def _sub_seed(seed: int, *parts: object) -> int:
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    """DataLoader workers: seed numpy and ``random`` from the worker's torch seed."""
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# -- the run context --------------------------------------------------------------------


@dataclass
class _Norm:
    """Normalisation statistics (one value per feature row) and where inference applies them."""

    where: str  # "extractor" | "model" | "none"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        from mcbr_core.features.normalise import normalise

        return normalise(x, self.mean, self.std) if self.mean is not None else np.asarray(x, dtype=np.float32)


@dataclass
class _Plan:
    fold: int
    split: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class _Context:
    config: TrainConfig
    dataset: Dataset
    task: str
    info: TaskInfo
    run_dir: Path
    source: Any
    cache: FeatureCache
    clips: list[Clip]
    paths: list[str]
    y: np.ndarray  # (n,) int64 or (n, K) float32
    groups: list[str]
    shape: tuple[int, int]  # (C, F)
    frames: int  # crop / patch length
    hop: int  # evaluation patch hop
    device: str
    amp: bool
    skipped: list[tuple[str, str]]
    plugins: Any
    log_path: Path
    fitted: bool = False  # the extractor learns a state (Zhang's codebook) on each fold's training part
    state: dict[str, np.ndarray] | None = None  # that state, in a fold's context
    hashes: list[str | None] = field(default_factory=list)  # each clip's fingerprint (None: unreadable)

    @property
    def labels(self) -> list[str]:
        return list(self.info.labels)

    @property
    def multilabel(self) -> bool:
        return self.info.multilabel


class _MetricsLog:
    """``metrics.jsonl``: append lines; drop a fold's lines from an epoch on (for resume)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=_json_default) + "\n")

    def truncate(self, fold: int, from_epoch: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            drop = rec.get("fold") == fold and (
                (rec.get("phase") == "epoch" and rec.get("epoch", -1) >= from_epoch) or rec.get("phase") == "eval"
            )
            if not drop and rec.get("phase") != "summary":
                keep.append(line)
        self.path.write_text("".join(f"{ln}\n" for ln in keep), encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds a checkpoint (of a fold, of a stacked network's branch, or the final model)."""
    return run_dir.is_dir() and any(run_dir.rglob("*.safetensors"))


def _discard(run_dir: Path, created: Path | None) -> None:
    """Remove what a run wrote: the folders it created, else its own files in ``run_dir``."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in ("checkpoints", "branches"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def _open_run(config: TrainConfig, dataset: Dataset, task: str, *, resume: bool) -> tuple[TrainConfig, Path, Path | None]:
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
        config = replace(config, dataset={"kind": dataset.name, "root": str(dataset.root), "options": dataset.options})
    run_dir = Path(config.run_dir) if config.run_dir else Path("runs") / f"{dataset.name}-{task}-{config.family}-s{config.seed}"
    cfg_path = run_dir / "config.json"
    new = config.to_dict()
    if cfg_path.exists():
        if not resume and _has_checkpoint(run_dir):
            raise ConfigError(f"{run_dir} already holds a run: resume it (--resume) or choose another run folder")
        if not resume:  # a run that stopped before its first checkpoint: nothing to resume
            log.info("%s: starting afresh (the run there stopped before its first checkpoint)", run_dir)
            _discard(run_dir, None)
        else:
            old = json.loads(cfg_path.read_text(encoding="utf-8"))["config"]
            changed = sorted(k for k in set(old) | set(new)
                             if k not in RESUMABLE and old.get(k) != new.get(k) and k != "run_dir")  # fmt: skip
            if changed:
                raise ConfigError(f"{run_dir}: cannot resume with other {', '.join(changed)} than the run was started with")
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": new, "dataset": {"name": dataset.name, "root": str(dataset.root), "task": task,
                                         "tasks": {k: asdict(v) for k, v in dataset.tasks.items()}}}  # fmt: skip
    cfg_path.write_text(json.dumps(record, indent=2, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")
    return config, run_dir, created


@contextmanager
def _run_folder(config: TrainConfig, dataset: Dataset, task: str, *, resume: bool) -> Iterator[tuple[TrainConfig, Path]]:
    """Open the run folder for the block; if the block fails before the first checkpoint, remove what the run wrote."""
    config, run_dir, created = _open_run(config, dataset, task, resume=resume)
    try:
        yield config, run_dir
    except BaseException:
        if not _has_checkpoint(run_dir):
            _discard(run_dir, created)
        raise


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")


def _source(config: TrainConfig, plugins: Any) -> Any:
    if config.mode in ("probe", "head"):
        return EmbeddingSource(config.base_model, plugins=plugins, device=config.device)
    name = "mcbr-stats" if config.mode == "stats" else config.features
    source = ExtractorSource(name, config.feature_options, plugins=plugins, max_seconds=config.max_seconds or None)
    if config.mode == "net" and _needs_fitting(source.extractor):
        source = FramesSource(name, config.feature_options, plugins=plugins, max_seconds=config.max_seconds or None)
    return source


def _needs_fitting(extractor: Any) -> bool:
    """An extractor that maps frames through a state learned from data, and has none yet."""
    return hasattr(extractor, "frames") and hasattr(extractor, "state_tensors") and getattr(extractor, "state", 0) is None


def _targets(clips: list[Clip], task: str, info: TaskInfo) -> np.ndarray:
    index = {label: i for i, label in enumerate(info.labels)}
    if info.multilabel:
        y = np.zeros((len(clips), len(index)), dtype=np.float32)
        for i, c in enumerate(clips):
            y[i, [index[v] for v in c.labels[task]]] = 1.0
        return y
    return np.array([index[c.labels[task][0]] for c in clips], dtype=np.int64)


def _indicators(y: np.ndarray, n_labels: int) -> np.ndarray:
    """Targets ``(n,)`` or ``(n, K)`` -> ``(n, K)`` label indicators (for stratified splitting)."""
    if y.ndim == 2:
        return y
    out = np.zeros((len(y), n_labels), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


# -- can these clips train a model? ----------------------------------------------------------


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


def _check_clips(config: TrainConfig, dataset: Dataset, task: str, info: TaskInfo, clips: list[Clip]) -> None:
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
    n_groups = len(set(groups))
    k = config.folds
    predefined = k >= 3 and all(c.fold is not None for c in clips) and len({c.fold for c in clips}) == k
    official = k < 3 and {"train"} <= {c.split for c in clips} and bool({"val", "test"} & {c.split for c in clips})
    if k >= 3:
        need, what = k, f"{k}-fold cross-validation"
    else:
        need = 1 + (config.val_fraction > 0) + (config.test_fraction > 0)
        what = "an artist-disjoint train/validation/test split" if need == 3 else "an artist-disjoint holdout split"
    if not (predefined or official) and n_groups < need:
        raise TrainingDataError(
            f"{what} keeps each artist in one part and needs at least {need} artists "
            f"(an {unit} without one counts as its own); {where}'s {_count(len(clips), unit)} with {task} labels "
            f"have {n_groups} ({_artists_per_label(clips, groups, task)})"
        )
    y = _targets(clips, task, info)
    for plan in _plans(config, clips, groups, _indicators(y, len(info.labels))):
        seen = y[plan.train] if y.ndim == 1 else np.flatnonzero(y[plan.train].any(axis=0))  # label indices
        trained = sorted({info.labels[int(i)] for i in seen})
        if len(trained) < 2:
            part = f"fold {plan.fold}'s training part" if k >= 3 else "the training part"
            raise TrainingDataError(
                f"{what} leaves {part} with {'only ' + trained[0] if trained else 'no label'}: each label needs "
                f"{unit}s of more artists ({_artists_per_label(clips, groups, task)}; "
                f"{_count(len(clips), unit)})"
            )


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
    _check_clips(config, dataset, task, info, clips)
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


def _prepare(config: TrainConfig, dataset: Dataset, task: str, run_dir: Path, *, plugins: Any, folds: int
             ) -> _Context:  # fmt: skip
    """Compute (or read from the cache) every clip's features; the run's context (``folds``: the split it makes)."""
    from mcbr_core.backends.device import pick_device

    info = dataset.tasks[task]
    seed_everything(config.seed)
    source = _source(config, plugins)
    cache = FeatureCache(source, root=config.cache_dir or None, namespace=dataset.name)
    labelled = dataset.labelled(task)
    ok, failed = cache.prepare(labelled, workers=config.num_workers)
    skipped = list(dataset.skipped) + failed
    (run_dir / "skipped.json").write_text(json.dumps(skipped, indent=1) + "\n", encoding="utf-8")
    if len(ok) < 2:
        raise ConfigError(f"{dataset.name}: only {len(ok)} usable clip(s) with {task} labels")
    if failed:  # the clips that decoded must still make a split that trains
        _check_clips(replace(config, folds=folds), dataset, task, info, ok)
    first = cache.load(ok[0])
    shape = (int(first.shape[0]), int(first.shape[1]))
    if config.mode == "net":
        fps = source.frames_per_second
        frames = _patch_frames(config, fps)
        hop = max(1, round(config.patch_hop_seconds * fps)) if config.patch_hop_seconds else frames
    else:
        frames = hop = 1
    device = pick_device(config.device)
    return _Context(
        config=config,
        dataset=dataset,
        task=task,
        info=info,
        run_dir=run_dir,
        source=source,
        cache=cache,
        clips=ok,
        paths=[str(cache.path(c)) for c in ok],
        y=_targets(ok, task, info),
        groups=[group_key(c.artist, c.id) for c in ok],
        shape=shape,
        frames=frames,
        hop=hop,
        device=device,
        amp=bool(config.amp and device.startswith("cuda")),
        skipped=skipped,
        plugins=plugins,
        log_path=run_dir / "metrics.jsonl",
        fitted=isinstance(source, FramesSource),
        hashes=[_clip_hash(c.path) for c in ok],
    )


def _clip_hash(path: Path) -> str | None:
    try:
        return clip_hash(path)
    except OSError as exc:
        log.debug("%s: no fingerprint (%s)", path, exc)
        return None


def _patch_frames(config: TrainConfig, fps: float) -> int:
    """Crop / patch length: ``patch_seconds``, else the architecture's own ``n_frames``, else 30 s."""
    if config.patch_seconds:
        return max(1, round(config.patch_seconds * fps))
    if config.arch_options.get("n_frames"):
        return int(config.arch_options["n_frames"])
    from mcbr_core.backends.trained import architecture_defaults

    default = architecture_defaults(config.architecture).get("n_frames")
    return int(default) if default else max(1, round(30.0 * fps))


def _load(ctx: _Context, i: int) -> np.ndarray:
    """A clip's cached features ``(C, F, T)``; for a ``head``, their clip mean ``(C, F, 1)``."""
    x = np.load(ctx.paths[i], mmap_mode="r")
    if x.shape[:2] != ctx.shape:
        raise ConfigError(f"{ctx.clips[i].id}: features of shape {x.shape}, expected {ctx.shape} x T")
    if ctx.config.mode == "head":  # the clip embedding, as the plugin stores it
        return np.asarray(x, dtype=np.float32).mean(axis=2, keepdims=True)
    return x


# -- plans -----------------------------------------------------------------------------


def _plans(config: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray) -> list[_Plan]:
    """The folds of a cross-validation (``folds >= 3``), else the one holdout plan.

    ``targets`` ``[shape=(n_clips, n_labels)]`` are the label indicators the parts are stratified on.
    """
    if config.folds >= 3:
        return _fold_plans(config, clips, groups, targets)
    return [_holdout_plan(config, clips, groups, targets)]


def _holdout_plan(c: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray) -> _Plan:
    splits = np.array([clip.split for clip in clips], dtype=object)
    if (splits == "train").any() and ((splits == "val") | (splits == "test")).any():
        train, val, test = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
        if not len(val) and c.val_fraction > 0:
            # carve an artist-disjoint validation part out of the official training part
            parts = holdout_split([groups[i] for i in train], targets[train],
                                  val_fraction=c.val_fraction, test_fraction=0.0, seed=c.seed)  # fmt: skip
            train, val = train[parts == "train"], train[parts == "val"]
        return _Plan(0, "official", train, val, test)
    parts = holdout_split(groups, targets, val_fraction=c.val_fraction, test_fraction=c.test_fraction, seed=c.seed)
    name = f"holdout (val {c.val_fraction:g}, test {c.test_fraction:g}, artist-disjoint)"
    return _Plan(0, name, *(np.flatnonzero(parts == s) for s in ("train", "val", "test")))


def _fold_plans(config: TrainConfig, clips: Sequence[Clip], groups: Sequence[str], targets: np.ndarray) -> list[_Plan]:
    k = config.folds
    predefined = [c.fold for c in clips]
    if all(f is not None for f in predefined) and len(set(predefined)) == k:
        names = sorted(set(predefined))
        folds = np.array([names.index(f) for f in predefined])
        how = "predefined"
    else:
        folds = grouped_folds(groups, targets, k, seed=config.seed)
        how = "artist-disjoint"
    plans = []
    for f in range(k):
        val_fold = (f + 1) % k  # the next fold validates (early stopping); the rest trains
        plans.append(
            _Plan(
                f,
                f"fold {f} of {k} ({how}; validation: fold {val_fold})",
                np.flatnonzero((folds != f) & (folds != val_fold)),
                np.flatnonzero(folds == val_fold),
                np.flatnonzero(folds == f),
            )
        )
    return plans


# -- model building and saving --------------------------------------------------------


def _fit_norm(ctx: _Context, plan: _Plan) -> _Norm:
    from mcbr_core.features.normalise import fit_normalisation

    c = ctx.config
    if ctx.fitted:
        return _Norm("none")  # word ids index a lookup table
    if c.mode == "net":
        ext_config = getattr(ctx.source.extractor, "config", None)
        if ext_config is not None and getattr(ext_config, "mean", None) is not None:
            return _Norm("none")  # the given feature options are normalised already
        where = "extractor" if ext_config is not None and hasattr(ext_config, "mean") else "model"
    else:
        where = "model"
    rng = np.random.default_rng(_sub_seed(c.seed, "norm", plan.fold))
    sample = plan.train if len(plan.train) <= NORM_SAMPLE else rng.choice(plan.train, NORM_SAMPLE, replace=False)
    mean, std = fit_normalisation(_load(ctx, int(i)) for i in sample)
    return _Norm(where, mean, std)


def _model_config(ctx: _Context) -> dict[str, Any]:
    c = ctx.config
    n_classes = len(ctx.labels)
    C, F = ctx.shape
    if c.mode == "net":
        from mcbr_core.backends.trained import architecture_defaults

        derived: dict[str, Any] = {"n_classes": n_classes, "in_channels": C, "n_bins": F, "n_frames": ctx.frames}
        if ctx.fitted:  # the lookup table follows the codebook
            ext = ctx.source.extractor.config
            derived.update(n_words=ext.n_words, word_dim=ext.n_components)
        known = architecture_defaults(c.architecture)
        if known:  # the architecture's config takes only its own fields
            derived = {k: v for k, v in derived.items() if k in known}
        return {**c.arch_options, **derived}
    if c.mode == "probe":
        extra = {k: v for k, v in c.arch_options.items() if k in ("hidden", "dropout")}
        return {"in_features": C * F, "n_classes": n_classes, **extra}
    return {"in_features": C * F, "n_classes": n_classes, "hidden": 0, "dropout": 0.0}


def _build(ctx: _Context, fold: int) -> Any:
    import torch

    from mcbr_core.backends.trained import build_architecture

    torch.manual_seed(_sub_seed(ctx.config.seed, "init", fold))
    return build_architecture(ctx.config.family, _model_config(ctx))


def _features_card(ctx: _Context, norm: _Norm) -> dict[str, Any]:
    c = ctx.config
    if c.mode in ("probe", "head"):
        base = ctx.source.analyzer.backend
        from mcbr_core.models.shipped import shipped_models

        model = c.base_model if c.base_model in shipped_models() else str(Path(c.base_model).expanduser().resolve())
        card: dict[str, Any] = {
            "extractor": base.extractor,
            "version": str(base.feature_version),
            "config": dict(base.extractor_options),
            "embedding_of": {"model": model, "id": base.model_id,
                             "layer": "penultimate, clip mean" if c.mode == "head" else "penultimate, per patch"},
            "patch_frames": base.patch_frames,
            "patch_hop": base.patch_hop,
        }
        if c.mode == "head":
            card["pool"] = "clip"  # the head reads the mean embedding of the analysed patches
    else:
        options = dict(c.feature_options)
        version = str(ctx.source.extractor.version)
        factory = ctx.source._registry("feature extractor").get(ctx.source.name)
        if norm.where == "extractor":
            options = {**options, "mean": list(norm.mean or ()), "std": list(norm.std or ())}
            version = str(factory(dict(options)).version)
        if ctx.state is not None:
            version = str(factory({**options, "state": ctx.state}).version)
        card = {
            "extractor": ctx.source.name,
            "version": version,
            "config": options,
            "patch_frames": ctx.frames if c.mode == "net" else None,
            "patch_hop": ctx.hop if c.mode == "net" else None,
        }
    if ctx.state is not None:
        card["state"] = {"tensors": STATE_PREFIX, "keys": sorted(ctx.state)}
    card["normalisation"] = {"where": norm.where}
    if norm.where == "model":
        card["normalisation"].update(mean=list(norm.mean or ()), std=list(norm.std or ()))
    return card


def _versions(ctx: _Context) -> dict[str, str]:
    import torch

    import mcbr_core

    out = {"mcbr": mcbr_core.__version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version()}  # fmt: skip
    if ctx.config.mode in CLIP_MODES:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    return out


def _card(ctx: _Context, plan: _Plan, net: Any, norm: _Norm, *, metrics: dict[str, Any], epoch: int, epochs: int,
          name: str, weights_digest: str) -> dict[str, Any]:  # fmt: skip
    c = ctx.config
    kind = ctx.info.kind
    return {
        "id": f"{name}-{weights_digest}",
        "name": name,
        "backend": "trained",
        "architecture": {"family": c.family, "config": _model_config(ctx)},
        "features": _features_card(ctx, norm),
        "heads": {ctx.task: ctx.labels},
        "activation": {ctx.task: "sigmoid" if ctx.multilabel else "softmax"},
        "tag_kinds": {ctx.task: dict.fromkeys(ctx.labels, kind)},
        "embedding": {"dim": _embedding_dim(ctx, net), "layer": "embed() (penultimate), mean over patches",
                      "metric": "angular"},
        "training": {
            "data": {"dataset": ctx.dataset.name, "root": str(ctx.dataset.root), "options": ctx.dataset.options,
                     "task": ctx.task, "n_train": len(plan.train), "n_val": len(plan.val), "n_test": len(plan.test)},
            "split": plan.split,
            "fold": plan.fold,
            "seed": c.seed,
            "folds": c.folds,
            "epoch": epoch,
            "epochs": epochs,
            "mode": c.mode,
            "config": c.to_dict(),
            # the clips it was fitted on or selected on (see mcbr_core.training.fingerprint)
            "fingerprint": fingerprint(h for i in (*plan.train, *plan.val) if (h := ctx.hashes[int(i)]) is not None),
        },
        "metrics": {k: v for k, v in metrics.items() if k != "labels"},
        "licence": ctx.dataset.licence,
        "versions": _versions(ctx),
    }


def _embedding_dim(ctx: _Context, net: Any) -> int:
    import torch

    x = torch.zeros((1, *ctx.shape, ctx.frames), device=next(net.parameters()).device)
    was = net.training
    net.eval()
    with torch.inference_mode():
        d = int(net.embed(x).shape[-1])
    net.train(was)
    return d


def _state_tensors(net: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def _digest(tensors: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].numpy().tobytes())
    return h.hexdigest()[:8]


def _save(ctx: _Context, plan: _Plan, net: Any, norm: _Norm, path: Path, *, metrics: dict[str, Any],
          epoch: int, epochs: int, fit: dict[str, Any] | None = None) -> Path:  # fmt: skip
    from mcbr_core.models.checkpoint import save_model

    tensors = _state_tensors(net)
    if ctx.state is not None:
        import torch

        tensors.update({STATE_PREFIX + k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in ctx.state.items()})
    name = ctx.config.name or ctx.run_dir.name
    if ctx.config.folds:
        name = f"{name}-fold{plan.fold}"
    card = _card(ctx, plan, net, norm, metrics=metrics, epoch=epoch, epochs=epochs, name=name,
                 weights_digest=_digest(tensors))  # fmt: skip
    if fit:
        card["training"]["fit"] = fit
    return save_model(path, tensors, card)


# -- training and evaluation ------------------------------------------------------------


class _Crops:
    """Map-style dataset of random fixed-length crops (DataLoader input).

    Each item's crop comes from a generator seeded by ``(seed, fold, epoch, index)``,
    so batches do not depend on the number of workers.
    """

    def __init__(self, paths: list[str], y: np.ndarray, frames: int, norm: _Norm, seed: int, fold: int) -> None:
        self.paths, self.y, self.frames, self.norm = paths, y, frames, norm
        self.seed, self.fold, self.epoch = seed, fold, 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        feats = np.load(self.paths[i], mmap_mode="r")
        rng = np.random.default_rng([self.seed, self.fold, self.epoch, i])
        return self.norm.apply(random_crop(feats, self.frames, rng)), self.y[i]


def _loss_fn(ctx: _Context) -> Any:
    """Cross-entropy (single-label) or binary cross-entropy on logits (multi-label)."""
    import torch.nn.functional as F

    def loss(logits: Any, y: Any, reduction: str = "mean") -> Any:
        if ctx.multilabel:
            per_clip = F.binary_cross_entropy_with_logits(logits, y.float(), reduction="none").mean(dim=-1)  # (B,)
        else:
            per_clip = F.cross_entropy(logits, y.long(), reduction="none")  # (B,)
        return per_clip if reduction == "none" else per_clip.mean()

    return loss


def _autocast(ctx: _Context) -> Any:
    import torch

    if not ctx.amp:
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _predict(ctx: _Context, net: Any, idx: np.ndarray, norm: _Norm, *, embeddings: bool
             ) -> tuple[np.ndarray, np.ndarray | None, float]:  # fmt: skip
    """Clip-level probabilities (mean over patches), embeddings (mean over patches) and loss."""
    import torch

    from mcbr_core.features.patches import patches as cut

    loss_fn = _loss_fn(ctx)
    n, K = len(idx), len(ctx.labels)
    probs = np.zeros((n, K))
    embs: np.ndarray | None = None
    counts = np.zeros(n)
    loss_sum, loss_n = 0.0, 0
    xs: list[np.ndarray] = []
    owners: list[int] = []
    bs = max(ctx.config.batch_size, 16)
    net.eval()

    def flush() -> None:
        nonlocal embs, loss_sum, loss_n
        if not xs:
            return
        x = torch.from_numpy(np.stack(xs)).to(ctx.device)  # (B, C, F, T)
        own = np.asarray(owners)
        y = torch.from_numpy(np.asarray(ctx.y[idx[own]])).to(ctx.device)
        with torch.inference_mode(), _autocast(ctx):
            logits = net(x).float()
            loss_sum += float(loss_fn(logits, y, reduction="none").sum())
            loss_n += len(own)
            p = logits.sigmoid() if ctx.multilabel else logits.softmax(dim=-1)
            np.add.at(probs, own, p.cpu().numpy())
            if embeddings:
                e = net.embed(x).float().cpu().numpy()  # (B, D)
                if embs is None:
                    embs = np.zeros((n, e.shape[1]))
                np.add.at(embs, own, e)
        np.add.at(counts, own, 1)
        xs.clear()
        owners.clear()

    for j, i in enumerate(idx):
        feats = norm.apply(_load(ctx, int(i)))
        for p in cut(feats, patch_frames=ctx.frames, hop=ctx.hop):  # (C, F, frames)
            xs.append(p)
            owners.append(j)
            if len(xs) >= bs:
                flush()
    flush()
    counts = np.maximum(counts, 1)[:, None]
    return probs / counts, (embs / counts if embs is not None else None), loss_sum / max(loss_n, 1)


def _evaluate(ctx: _Context, net: Any, idx: np.ndarray, norm: _Norm, *, embeddings: bool) -> dict[str, Any]:
    probs, embs, loss = _predict(ctx, net, idx, norm, embeddings=embeddings)
    out = M.evaluate(
        ctx.y[idx],
        probs,
        labels=ctx.labels,
        multilabel=ctx.multilabel,
        threshold=ctx.config.threshold,
        embeddings=embs,
        artists=[ctx.clips[int(i)].artist for i in idx],
    )
    out["loss"] = loss
    return out


def _short(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    keys = ("loss", "accuracy", "macro_f1", "micro_f1", "precision_at_1", "precision_at_3", "hamming_loss")
    return {f"{prefix}{k}": metrics.get(k) for k in keys}


def _loader(ctx: _Context, data: _Crops, plan: _Plan, epoch: int, purpose: str) -> Any:
    """A seeded, shuffled loader over the epoch's training crops (``purpose`` seeds the order)."""
    import torch
    from torch.utils.data import DataLoader

    c = ctx.config
    data.epoch = epoch
    return DataLoader(
        data,
        batch_size=c.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(_sub_seed(c.seed, purpose, plan.fold, epoch)),
        num_workers=c.num_workers,
        worker_init_fn=_worker_init,
        drop_last=len(data) > c.batch_size,  # no batch of one (BatchNorm)
        pin_memory=ctx.device.startswith("cuda"),
    )


def _train_epoch(ctx: _Context, net: Any, opt: Any, scaler: Any, data: _Crops, plan: _Plan, epoch: int) -> float:
    import torch

    c = ctx.config
    loader = _loader(ctx, data, plan, epoch, "order")
    torch.manual_seed(_sub_seed(c.seed, "dropout", plan.fold, epoch))
    loss_fn = _loss_fn(ctx)
    net.train()
    total, count = 0.0, 0
    for x, y in loader:
        x = x.to(ctx.device, non_blocking=True)
        y = y.to(ctx.device, non_blocking=True)
        with _autocast(ctx):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += float(loss.detach()) * len(x)
        count += len(x)
    return total / max(count, 1)


def precise_batchnorm(net: Any, batches: Any) -> int:
    """Re-estimate every BatchNorm layer's running statistics on ``batches`` ("precise BN").

    Keras' momentum of 0.99 (PyTorch 0.01), which the papers' ports keep, needs
    thousands of steps to forget the initial statistics (mean 0, variance 1); a small
    dataset gives tens, and the evaluation-mode network then maps every clip to about
    the same output. A pass over the training crops with a cumulative average gives
    the statistics of the current weights. Momentum and train/eval mode are restored.

    Parameters
    ----------
    net
        A ``torch.nn.Module``.
    batches
        Iterable of input tensors ``(B, C, F, T)`` on the network's device.

    Returns
    -------
    int
        The number of BatchNorm layers re-estimated (0: nothing to do; no pass is made).
    """
    import torch

    was_training = net.training
    net.train()  # a network may keep frozen parts in eval mode (Whitell's TimeFreq): leave those alone
    layers = [
        m
        for m in net.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.training
    ]
    if not layers:
        net.train(was_training)
        return 0
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the pass
    with torch.no_grad():
        for x in batches:
            net(x)
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum
    net.train(was_training)
    return len(layers)


def _precise_batchnorm(ctx: _Context, net: Any, data: _Crops, plan: _Plan, epoch: int) -> None:
    """:func:`precise_batchnorm` over (at most ``PRECISE_BN_BATCHES`` of) the epoch's training crops."""
    loader = _loader(ctx, data, plan, epoch, "precise-bn")

    def batches() -> Any:
        for i, (x, _) in enumerate(loader):
            if i >= PRECISE_BN_BATCHES:
                break
            yield x.to(ctx.device, non_blocking=True)

    precise_batchnorm(net, batches())


def _run_fold(ctx: _Context, plan: _Plan, *, resume: bool) -> FoldResult:
    """Train (or resume) one fold, keep the best epoch, evaluate it."""
    import torch

    from mcbr_core.models.checkpoint import load_model

    c = ctx.config
    folder = ctx.run_dir / "checkpoints" / f"fold{plan.fold}"
    folder.mkdir(parents=True, exist_ok=True)
    last, best, state_path = folder / "last.safetensors", folder / "best.safetensors", folder / "last.state.pt"
    metrics_log = _MetricsLog(ctx.log_path)
    log.info("fold %d: %d train, %d val, %d test clips (%s)", plan.fold, len(plan.train), len(plan.val),
             len(plan.test), plan.split)  # fmt: skip
    if ctx.fitted:
        ctx = _fit_state(ctx, plan)
    norm = _fit_norm(ctx, plan)
    net = _build(ctx, plan.fold).to(ctx.device)
    resuming = resume and state_path.exists() and last.exists()
    if getattr(net, "trained_branches", None) and not resuming:  # a resumed network's checkpoint holds them
        _train_branches(ctx, plan, net, resume=resume)
    if ctx.state is not None and hasattr(net, "init_lookup"):
        net.init_lookup(np.array(ctx.state["centroids"]))  # Zhang et al.: the table starts at the codebook
    start, best_score, best_epoch, bad, stopped = 0, -math.inf, -1, 0, False
    opt = torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=ctx.amp and not torch.cuda.is_bf16_supported())
    if resuming:
        tensors, _ = load_model(last, device=ctx.device)
        net.load_state_dict(_weights(tensors))
        state = torch.load(state_path, map_location=ctx.device, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start, best_score, best_epoch = int(state["epoch"]) + 1, float(state["best_score"]), int(state["best_epoch"])
        bad, stopped = int(state["bad_epochs"]), bool(state["stopped"])
        log.info("fold %d: resuming after epoch %d (best %d)", plan.fold, start - 1, best_epoch)
    metrics_log.truncate(plan.fold, start)
    if c.mode in CLIP_MODES and start == 0:  # one closed-form fit instead of epochs
        fit = _fit_logreg(ctx, plan, net, norm)
        if _refits_on_val(c, plan):  # the validation part is training data now: keep its score from before
            val = {"macro_f1": fit["val_macro_f1_before_refit"]}
        else:
            val = _evaluate(ctx, net, plan.val, norm, embeddings=False) if len(plan.val) else {}
        metrics_log.append({"fold": plan.fold, "epoch": 0, "phase": "epoch", "train_loss": None,
                            **_short(val, "val_"), "best": True, "seconds": 0.0, "fit": fit})  # fmt: skip
        _save(ctx, plan, net, norm, best, metrics=val, epoch=0, epochs=1, fit=fit)
        _save(ctx, plan, net, norm, last, metrics=val, epoch=0, epochs=1, fit=fit)
        torch.save(_state_dict(opt, None, 0, 0.0, 0, 0, True), state_path)
        start, best_epoch, stopped = 1, 0, True
    data = _Crops([ctx.paths[i] for i in plan.train], ctx.y[plan.train], ctx.frames, norm, c.seed, plan.fold)
    epoch = start - 1
    for epoch in range(start, c.epochs if not stopped else start):
        t0 = time.perf_counter()
        train_loss = _train_epoch(ctx, net, opt, scaler, data, plan, epoch)
        _precise_batchnorm(ctx, net, data, plan, epoch)
        val = _evaluate(ctx, net, plan.val, norm, embeddings=False) if len(plan.val) else {}
        score = val.get("macro_f1")
        improved = score is None or score > best_score + c.min_delta or best_epoch < 0
        if improved:
            best_score, best_epoch, bad = (score if score is not None else best_score), epoch, 0
        else:
            bad += 1
        stopped = bool(c.patience and bad >= c.patience)
        seconds = time.perf_counter() - t0
        metrics_log.append({"fold": plan.fold, "epoch": epoch, "phase": "epoch", "train_loss": train_loss,
                            **_short(val, "val_"), "best": improved, "lr": opt.param_groups[0]["lr"],
                            "seconds": round(seconds, 3)})  # fmt: skip
        log.info("fold %d epoch %d/%d: train loss %.4f, val loss %s, val macro-F1 %s%s (%.1fs)", plan.fold, epoch + 1,
                 c.epochs, train_loss, _fmt(val.get("loss")), _fmt(score), " *" if improved else "", seconds)  # fmt: skip
        if improved:
            _save(ctx, plan, net, norm, best, metrics=val, epoch=epoch, epochs=epoch + 1)
        _save(ctx, plan, net, norm, last, metrics=val, epoch=epoch, epochs=epoch + 1)
        torch.save(_state_dict(opt, scaler, epoch, best_score, best_epoch, bad, stopped), state_path)
        if stopped:
            log.info("fold %d: no better validation macro-F1 for %d epochs; stopping", plan.fold, bad)
            break
    epochs_run = max(epoch + 1, start)
    tensors, _ = load_model(best, device=ctx.device)
    net.load_state_dict(_weights(tensors))
    part, idx = ("test", plan.test) if len(plan.test) else ("val", plan.val)
    if not len(plan.test) and _refits_on_val(c, plan):
        part = "val (in-sample: the head was refitted on it)"
    if not len(idx):
        part, idx = "train", plan.train
    final = _evaluate(ctx, net, idx, norm, embeddings=True)
    metrics_log.append({"fold": plan.fold, "phase": "eval", "split": part, "epoch": best_epoch, **final})
    return FoldResult(
        fold=plan.fold,
        split=plan.split,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        stopped_early=stopped and epochs_run < c.epochs,
        metrics=final,
        evaluated_on=part,
        model_path=best,
    )


def _train_branches(ctx: _Context, plan: _Plan, net: Any, *, resume: bool) -> None:
    """Train the models a stacked network freezes (``net.trained_branches``) on this fold's data.

    Whitell's TimeFreq stacks *trained* Time and Freq models. Each branch is trained
    here as a run of its own under ``RUN/branches/<name>/``, on the same plan (so no
    test clip is seen), and its best epoch goes to ``net.load_branches(**weights)``.
    """
    from mcbr_core.models.checkpoint import load_model

    weights = {}
    for name, architecture in net.trained_branches.items():
        sub_dir = ctx.run_dir / "branches" / name
        config = replace(ctx.config, architecture=architecture, name=f"{ctx.config.name or ctx.run_dir.name}-{name}")
        log.info("fold %d: training the %s branch (%s) first", plan.fold, name, architecture)
        result = _run_fold(replace(ctx, config=config, run_dir=sub_dir, log_path=sub_dir / "metrics.jsonl"), plan,
                           resume=resume)  # fmt: skip
        log.info("fold %d: %s branch: %s macro-F1 %s", plan.fold, name, result.evaluated_on,
                 _fmt(result.metrics.get("macro_f1")))  # fmt: skip
        tensors, _ = load_model(result.model_path, device=ctx.device)
        weights[name] = _weights(tensors)
    net.load_branches(**weights)


def _weights(tensors: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}


def _fit_state(ctx: _Context, plan: _Plan) -> _Context:
    """Fit the extractor's codebook on the fold's training clips; map every clip to word ids.

    Returns a context for the fold whose features are the word ids ``(1, 1, S)``.
    """
    from mcbr_core.features.audiowords import fit_audio_words, segments

    c = ctx.config
    cfg = ctx.source.extractor.config
    rng = np.random.default_rng(_sub_seed(c.seed, "codebook", plan.fold))
    sample = plan.train if len(plan.train) <= NORM_SAMPLE else rng.choice(plan.train, NORM_SAMPLE, replace=False)
    log.info("fold %d: fitting the %s codebook on %d clips", plan.fold, ctx.source.name, len(sample))
    state = fit_audio_words(
        (np.load(ctx.paths[int(i)], mmap_mode="r") for i in sample),
        n_frames_per_segment=cfg.n_frames_per_segment,
        n_components=cfg.n_components,
        n_words=cfg.n_words,
        seed=_sub_seed(c.seed, "kmeans", plan.fold),
        segment_hop=cfg.segment_hop,
    ).state_tensors()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(state[k]).tobytes() for k in sorted(state))).hexdigest()
    folder = ctx.cache.dir / f"words-{digest[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in ctx.paths:
        out = folder / Path(src).name
        if not out.exists():
            frames = np.load(src, mmap_mode="r")
            from mcbr_core.features.audiowords import AudioWordsState

            ids = AudioWordsState.from_arrays(state).assign(
                segments(frames, n_frames_per_segment=cfg.n_frames_per_segment, hop=cfg.hop)
            )
            tmp = out.with_name(f".{out.name}.tmp")
            with tmp.open("wb") as fh:
                np.save(fh, ids.astype(np.float32).reshape(1, 1, -1))  # (1, 1, S)
            tmp.replace(out)
        paths.append(str(out))
    return replace(ctx, paths=paths, shape=(1, 1), state=state)


def _state_dict(opt: Any, scaler: Any, epoch: int, best_score: float, best_epoch: int, bad: int, stopped: bool
                ) -> dict[str, Any]:  # fmt: skip
    """Resume state: tensors and primitives only (loads with ``weights_only=True``)."""
    return {
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
        "epoch": epoch,
        "best_score": float(best_score),
        "best_epoch": best_epoch,
        "bad_epochs": bad,
        "stopped": stopped,
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _c_grid(c: TrainConfig) -> list[float]:
    """The C values to choose from: arch option ``C`` (number or list), else the mode's default."""
    value = c.arch_options.get("C", HEAD_C_GRID if c.mode == "head" else 1.0)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        if any(isinstance(v, bool) for v in values):
            raise TypeError
        grid = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"train: arch option C must be a number or a list of numbers, got {value!r}") from None
    if not grid or not all(math.isfinite(v) and v > 0 for v in grid):
        raise ConfigError(f"train: arch option C must be finite and > 0, got {value!r}")
    return grid


def _logreg(ctx: _Context, X: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Logistic regression weights ``(K, D)`` and biases ``(K,)``; whether it converged."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    c = ctx.config
    K = len(ctx.labels)
    W = np.zeros((K, X.shape[1]))
    b = np.full(K, -50.0)  # a label absent from training is never predicted
    options = {"C": C, "max_iter": int(c.arch_options.get("max_iter", 2000)), "random_state": c.seed}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if ctx.multilabel:
            for k in range(K):
                yk = y[:, k] > 0.5
                if yk.all() or not yk.any():
                    b[k] = 50.0 if yk.all() else -50.0
                    continue
                clf = LogisticRegression(**options).fit(X, yk)
                W[k], b[k] = clf.coef_[0], clf.intercept_[0]
        else:
            clf = LogisticRegression(**options).fit(X, y)
            classes = clf.classes_.astype(int)
            if len(classes) == 1:
                b[classes[0]] = 0.0
            elif len(classes) == 2:  # sklearn gives one row: logit of classes[1] against classes[0]
                W[classes[1]], b[classes[1]], b[classes[0]] = clf.coef_[0], clf.intercept_[0], 0.0
            else:
                W[classes], b[classes] = clf.coef_, clf.intercept_
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return W, b, converged


def _refits_on_val(config: TrainConfig, plan: _Plan) -> bool:
    """Whether a closed-form fit chooses C on the validation part and then trains on it too."""
    return config.mode in CLIP_MODES and len(plan.val) > 0 and len(_c_grid(config)) > 1


def _fit_logreg(ctx: _Context, plan: _Plan, net: Any, norm: _Norm) -> dict[str, Any]:
    """Fit logistic regression on the clip vectors and copy it into the dense head.

    With several C values, each is fitted on the training part and scored (macro-F1)
    on the validation part; the best is refitted on training + validation.

    Returns
    -------
    dict
        The chosen ``C``, the grid and what it was fitted on (for the model card).
    """
    import torch

    def vectors(idx: np.ndarray) -> np.ndarray:
        return np.stack([norm.apply(_load(ctx, int(i))).mean(axis=2).reshape(-1) for i in idx])  # (n, D)

    grid = _c_grid(ctx.config)
    X, y, C, selection = vectors(plan.train), ctx.y[plan.train], grid[0], None
    if len(grid) > 1 and not len(plan.val):
        C = sorted(grid)[len(grid) // 2]
        log.warning("fold %d: no validation part to choose C on; using C=%g, the middle of the grid", plan.fold, C)
    if _refits_on_val(ctx.config, plan):
        Xv = vectors(plan.val)
        scores = []
        for value in grid:
            W, b, _ = _logreg(ctx, X, y, value)
            p = Xv @ W.T + b  # (n_val, K) logits: their ranking is all macro-F1 needs
            probs = 1 / (1 + np.exp(-p)) if ctx.multilabel else p
            f1 = M.evaluate(ctx.y[plan.val], probs, labels=ctx.labels, multilabel=ctx.multilabel,
                            threshold=ctx.config.threshold)["macro_f1"]  # fmt: skip
            scores.append(f1)
        C, selection = grid[int(np.argmax(scores))], float(max(scores))
        X, y = np.vstack([X, Xv]), np.concatenate([y, ctx.y[plan.val]])
        log.info("fold %d: C=%g (validation macro-F1 %s over C=%s); refitting on training + validation",
                 plan.fold, C, " ".join(f"{v:.3f}" for v in scores), ",".join(f"{v:g}" for v in grid))  # fmt: skip
    W, b, converged = _logreg(ctx, X, y, C)
    if not converged:
        log.warning("logistic regression did not converge (raise arch option max_iter)")
    with torch.no_grad():
        net.out.weight.copy_(torch.from_numpy(W).float())
        net.out.bias.copy_(torch.from_numpy(b).float())
    return {"C": C, "C_grid": grid, "fitted_on": "train+val" if selection is not None else "train",
            "val_macro_f1_before_refit": selection}


# -- entry points --------------------------------------------------------------------------


def train(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Any = None) -> RunResult:
    """Train one model on the official split (or an artist-disjoint holdout) and save it.

    Parameters
    ----------
    config
        The run's settings (``folds`` is ignored; see :func:`cross_validate`).
    dataset
        A loaded dataset.
    resume
        Continue the run in ``config.run_dir`` (same settings; ``epochs`` may grow).
    plugins
        Plugin manager for extractors, decoders and pretrained backends.

    Returns
    -------
    RunResult
        ``model_path`` is ``RUN/model.safetensors``, ready for the plugin's ``model`` setting.
    """
    task = check_trainable(replace(config, folds=0), dataset)
    with _run_folder(config, dataset, task, resume=resume) as (opened, run_dir):
        ctx = _prepare(opened, dataset, task, run_dir, plugins=plugins, folds=0)
        plan = _holdout_plan(opened, ctx.clips, ctx.groups, _indicators(ctx.y, len(ctx.labels)))
        parts = {ctx.clips[int(i)].id: name for name in ("train", "val", "test") for i in getattr(plan, name)}
        _write_json(ctx.run_dir / "split.json", {"split": plan.split, "parts": parts})
        result = _run_fold(ctx, plan, resume=resume)
        final = ctx.run_dir / "model.safetensors"
        _finalise_model(ctx, plan, result.model_path, final, result)
        table = M.format_fold_table([{"fold": plan.fold, **result.metrics}], architecture=ctx.config.row_name)
        _write_report(ctx, [result], table)
        return RunResult(ctx.run_dir, final, result, table, ctx.skipped)


def _finalise_model(ctx: _Context, plan: _Plan, best: Path, final: Path, result: FoldResult) -> None:
    """Copy the best checkpoint to ``final``, with the final evaluation in its card."""
    from mcbr_core.models.checkpoint import load_model, save_model

    tensors, card = load_model(best)
    card = {k: v for k, v in card.items() if k != "format"}
    card["metrics"] = {f"{result.evaluated_on}": {k: v for k, v in result.metrics.items() if k != "labels"}}
    card["training"] = {**card["training"], "epochs": result.epochs_run, "best_epoch": result.best_epoch}
    save_model(final, tensors, card)


def _write_report(ctx: _Context, results: list[FoldResult], table: str) -> None:
    c = ctx.config
    kind = "multi" if ctx.multilabel else "single"
    lines = [
        f"dataset {ctx.dataset.name} ({ctx.dataset.root}), task {ctx.task} ({kind}-label, "
        + f"{len(ctx.labels)} labels), {len(ctx.clips)} clips",
        f"mode {c.mode}, architecture {c.family}, features {_features_name(ctx)}, seed {c.seed}",
    ]
    for r in results:
        lines.append(f"fold {r.fold}: {r.split}; best epoch {r.best_epoch + 1} of {r.epochs_run}; "
                     f"evaluated on {r.evaluated_on}")  # fmt: skip
    lines += ["", table]
    (ctx.run_dir / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _features_name(ctx: _Context) -> str:
    if ctx.config.mode == "head":
        return f"clip embedding of {ctx.config.base_model}"
    return f"embedding of {ctx.config.base_model}" if ctx.config.mode == "probe" else ctx.source.name


def cross_validate(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Any = None) -> CVResult:
    """k-fold cross-validation with artist-disjoint folds (``config.folds`` >= 2).

    Fold ``f`` is tested, fold ``f + 1`` validates (early stopping), the others train.
    Predefined folds (GTZAN's) are used when the dataset has exactly ``folds`` of them.

    Returns
    -------
    CVResult
        Per-fold results, their mean and standard deviation, and the per-fold table.
    """
    if config.folds < 3:
        raise ConfigError("cross_validate: set folds >= 3")
    task = check_trainable(config, dataset)
    with _run_folder(config, dataset, task, resume=resume) as (opened, run_dir):
        ctx = _prepare(opened, dataset, task, run_dir, plugins=plugins, folds=opened.folds)
        plans = _fold_plans(opened, ctx.clips, ctx.groups, _indicators(ctx.y, len(ctx.labels)))
        folds = {ctx.clips[int(i)].id: p.fold for p in plans for i in p.test}
        _write_json(ctx.run_dir / "folds.json", {"split": plans[0].split.split(";")[0], "folds": folds})
        results = [_run_fold(ctx, plan, resume=resume) for plan in plans]
    rows = [{"fold": r.fold, **r.metrics} for r in results]
    table = M.format_fold_table(rows, architecture=ctx.config.row_name)
    numeric = [k for k, v in results[0].metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    mean, std = {}, {}
    for k in numeric:
        xs = [r.metrics[k] for r in results if r.metrics.get(k) is not None]
        if xs:
            mean[k], std[k] = float(np.mean(xs)), float(np.std(xs))
    _MetricsLog(ctx.log_path).append({"phase": "summary", "folds": len(results), "mean": mean, "std": std})
    _write_report(ctx, results, table)
    return CVResult(ctx.run_dir, results, mean, std, table, ctx.skipped)


def run(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Any = None) -> RunResult | CVResult:
    """:func:`cross_validate` when ``config.folds >= 3``, else :func:`train`."""
    if config.folds >= 3:
        return cross_validate(config, dataset, resume=resume, plugins=plugins)
    return train(config, dataset, resume=resume, plugins=plugins)
