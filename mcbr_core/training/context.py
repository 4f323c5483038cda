"""A run's context: the config, the dataset's usable clips, their cached features and targets.

:func:`prepare` computes (or reads from the cache) every labelled clip's features and
returns the :class:`RunContext` that every later step reads. A fold whose extractor
learns a state (Zhang's codebook) gets a context of its own, with that state and
the features it maps to (see :func:`mcbr_core.training.inputs.fit_state`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.training.cache import EmbeddingSource, ExtractorSource, FeatureCache, FramesSource
from mcbr_core.training.checks import check_clips
from mcbr_core.training.config import TrainConfig
from mcbr_core.training.datasets.base import Clip, Dataset, TaskInfo
from mcbr_core.training.distributed import main_first
from mcbr_core.training.fingerprint import clip_hash_or_none
from mcbr_core.training.plans import encode_targets
from mcbr_core.training.runs import MetricsLog
from mcbr_core.training.seeds import seed_everything
from mcbr_core.training.splits import group_key

if TYPE_CHECKING:
    from mcbr_core.plugins import Plugins

log = logging.getLogger(__name__)

__all__ = ["RunContext", "prepare"]


@dataclass(frozen=True)
class RunContext:
    """Everything the steps of a run read.

    Attributes
    ----------
    config, dataset, task, info
        The run's settings, its dataset, the task's name there and its labels.
    run_dir
        The run folder (a stacked network's branch runs in ``RUN/branches/<name>``).
    source, cache
        What computes the features, and where they are kept.
    clips, paths, hashes
        The usable clips, their feature files (``.npy``, ``(C, F, T)``) and audio fingerprints
        (``None``: unreadable).
    y : np.ndarray [shape=(n,) int64 or (n, K) float32]
        Class indices, or multi-label indicators.
    groups
        Each clip's artist group (:func:`mcbr_core.training.splits.group_key`).
    shape
        ``(C, F)`` of every clip's features.
    frames, hop
        Training crop (and inference patch) length, and the evaluation patch hop, in frames.
    device, amp
        Torch device; mixed precision.
    skipped
        ``(clip id, reason)`` of the clips left out.
    plugins
        Plugin manager for extractors, decoders, backends and architectures.
    fitted
        The extractor learns a state (Zhang's codebook) on each fold's training part.
    state
        That state, in a fold's context.
    """

    config: TrainConfig
    dataset: Dataset
    task: str
    info: TaskInfo
    run_dir: Path
    source: ExtractorSource | EmbeddingSource
    cache: FeatureCache
    clips: list[Clip]
    paths: list[str]
    y: np.ndarray
    groups: list[str]
    shape: tuple[int, int]
    frames: int
    hop: int
    device: str
    amp: bool
    skipped: list[tuple[str, str]]
    plugins: Plugins | None
    fitted: bool = False
    state: dict[str, np.ndarray] | None = None
    hashes: list[str | None] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """The task's labels, in output order."""
        return list(self.info.labels)

    @property
    def multilabel(self) -> bool:
        """Whether a clip may have several labels (sigmoid outputs)."""
        return self.info.multilabel

    @property
    def metrics(self) -> MetricsLog:
        """``RUN/metrics.jsonl``."""
        return MetricsLog(self.run_dir / "metrics.jsonl")

    @property
    def model_name(self) -> str:
        """The model's name: the config's, else the run folder's."""
        return self.config.name or self.run_dir.name


def _source(config: TrainConfig, plugins: Plugins | None) -> ExtractorSource | EmbeddingSource:
    if config.mode in ("probe", "head"):
        return EmbeddingSource(config.base_model, plugins=plugins, device=config.device)
    name = "mcbr-stats" if config.mode == "stats" else config.features
    source = ExtractorSource(
        name, config.feature_options, plugins=plugins, max_seconds=config.max_seconds or None
    )
    if config.mode == "net" and _needs_fitting(source.extractor):
        source = FramesSource(
            name, config.feature_options, plugins=plugins, max_seconds=config.max_seconds or None
        )
    return source


def _needs_fitting(extractor: object) -> bool:
    """An extractor that maps frames through a state learned from data, and has none yet."""
    return (
        hasattr(extractor, "frames")
        and hasattr(extractor, "state_tensors")
        and getattr(extractor, "state", 0) is None
    )


def _patch_frames(config: TrainConfig, fps: float, plugins: Plugins | None) -> int:
    """Crop / patch length: ``patch_seconds``, else the architecture's own ``n_frames``, else 30 s."""
    if config.patch_seconds:
        return max(1, round(config.patch_seconds * fps))
    if config.arch_options.get("n_frames"):
        return int(config.arch_options["n_frames"])
    from mcbr_core.backends.trained import architecture_defaults

    default = architecture_defaults(config.architecture, plugins=plugins).get("n_frames")
    return int(default) if default else max(1, round(30.0 * fps))


def _frames_and_hop(config: TrainConfig, source: ExtractorSource | EmbeddingSource, plugins: Plugins | None
                    ) -> tuple[int, int]:  # fmt: skip
    """Crop length and evaluation hop in frames (``net`` mode); 1 and 1 for a vector per patch or clip."""
    if config.mode != "net":
        return 1, 1
    fps = source.frames_per_second
    frames = _patch_frames(config, fps, plugins)
    return frames, max(1, round(config.patch_hop_seconds * fps)) if config.patch_hop_seconds else frames


def _usable_clips(config: TrainConfig, dataset: Dataset, task: str, cache: FeatureCache, run_dir: Path, folds: int
                  ) -> tuple[list[Clip], list[tuple[str, str]]]:  # fmt: skip
    """The labelled clips whose features are cached (computed first); the skipped ones, written to ``skipped.json``."""
    ok, failed = cache.prepare(dataset.labelled(task), workers=config.num_workers)
    skipped = list(dataset.skipped) + failed
    (run_dir / "skipped.json").write_text(json.dumps(skipped, indent=1) + "\n", encoding="utf-8")
    if len(ok) < 2:
        raise ConfigError(f"{dataset.name}: only {len(ok)} usable clip(s) with {task} labels")
    if failed:  # the clips that decoded must still make a split that trains
        check_clips(replace(config, folds=folds), dataset, task, dataset.tasks[task], ok)
    return ok, skipped


def prepare(config: TrainConfig, dataset: Dataset, task: str, run_dir: Path, *, plugins: Plugins | None, folds: int
            ) -> RunContext:  # fmt: skip
    """Compute (or read from the cache) every clip's features; the run's context (``folds``: the split it makes)."""
    from mcbr_core.backends.device import pick_device

    info = dataset.tasks[task]
    seed_everything(config.seed)
    source = _source(config, plugins)
    cache = FeatureCache(source, root=config.cache_dir or None, namespace=dataset.name)
    with main_first():  # a distributed run's worker 0 fills the cache, then the others read it
        ok, skipped = _usable_clips(config, dataset, task, cache, run_dir, folds)
    first = cache.load(ok[0])
    frames, hop = _frames_and_hop(config, source, plugins)
    device = pick_device(config.device)
    return RunContext(
        config=config,
        dataset=dataset,
        task=task,
        info=info,
        run_dir=run_dir,
        source=source,
        cache=cache,
        clips=ok,
        paths=[str(cache.path(c)) for c in ok],
        y=encode_targets(ok, task, info),
        groups=[group_key(c.artist, c.id) for c in ok],
        shape=(int(first.shape[0]), int(first.shape[1])),
        frames=frames,
        hop=hop,
        device=device,
        amp=bool(config.amp and device.startswith("cuda")),
        skipped=skipped,
        plugins=plugins,
        fitted=isinstance(source, FramesSource),
        hashes=[clip_hash_or_none(c.path) for c in ok],
    )
