"""What a training run depends on: :class:`TrainConfig`, validated when it is built.

The config is written to ``RUN/config.json``; a resumed run may change only the
fields in :data:`RESUMABLE`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mcbr_core.errors import ConfigError
from mcbr_core.settings import from_mapping

__all__ = ["CLIP_MODES", "HEAD_C_GRID", "MODES", "RESUMABLE", "TrainConfig"]

MODES = ("net", "probe", "head", "stats")
#: C values a ``head`` chooses from on the validation part (arch option ``C`` overrides).
HEAD_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
CLIP_MODES = ("head", "stats")  # modes fitted in closed form on one vector per clip
#: Config fields a resumed run may change.
RESUMABLE = frozenset({"epochs", "patience", "min_delta", "num_workers", "device", "amp", "cache_dir"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (written to ``RUN/config.json``).

    Attributes
    ----------
    task
        Dataset task (``genre``, ``mood``, ``genres``, ``quadrant``, ...; a missing
        singular falls back to its plural).
    mode
        ``net``, ``probe``, ``head`` or ``stats`` (see :mod:`mcbr_core.training.loop`).
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
        if not (
            0 <= self.val_fraction < 1
            and 0 <= self.test_fraction < 1
            and self.val_fraction + self.test_fraction < 1
        ):
            raise ConfigError("train: val_fraction and test_fraction must be in [0, 1) and sum below 1")
        if self.patch_seconds < 0 or self.patch_hop_seconds < 0 or self.max_seconds < 0:
            raise ConfigError("train: patch_seconds, patch_hop_seconds and max_seconds must be >= 0")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"train: threshold must be in (0, 1), got {self.threshold}")
        for name in ("arch_options", "feature_options", "dataset"):
            if not isinstance(getattr(self, name), dict):
                object.__setattr__(self, name, dict(getattr(self, name)))
        if self.mode in CLIP_MODES:
            self.c_grid()  # fail now, not after the features are computed

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

    def c_grid(self) -> list[float]:
        """The C values a closed-form fit chooses from: arch option ``C`` (number or list), else the mode's default."""
        value = self.arch_options.get("C", HEAD_C_GRID if self.mode == "head" else 1.0)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            if any(isinstance(v, bool) for v in values):
                raise TypeError
            grid = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ConfigError(
                f"train: arch option C must be a number or a list of numbers, got {value!r}"
            ) from None
        if not grid or not all(math.isfinite(v) and v > 0 for v in grid):
            raise ConfigError(f"train: arch option C must be finite and > 0, got {value!r}")
        return grid
