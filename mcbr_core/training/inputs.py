"""What a fold's network reads: a clip's cached features, normalised, and a learned extractor state.

:func:`fit_norm` fits per-row normalisation statistics on (a seeded sample of) the
fold's training clips and says where inference applies them: in the extractor (its
config records them), in the model (the card records them), or nowhere (word ids).
:func:`fit_state` fits an extractor's learned state (Zhang's audio-word codebook,
:func:`mcbr_core.features.audiowords.fit_codebook`) on the fold's training clips.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.training.context import RunContext
from mcbr_core.training.plans import Plan
from mcbr_core.training.seeds import sub_seed

log = logging.getLogger(__name__)

__all__ = ["NORM_SAMPLE", "Norm", "fit_norm", "fit_state", "load_clip", "train_sample"]

NORM_SAMPLE = 512  # clips the normalisation statistics (and a codebook) are fitted on: a seeded sample of the training part


@dataclass(frozen=True)
class Norm:
    """Normalisation statistics (one value per feature row) and where inference applies them.

    Attributes
    ----------
    where
        ``"extractor"``, ``"model"`` or ``"none"``.
    mean, std
        ``C * F`` values each, or ``None``.
    """

    where: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise features ``[shape=(C, F, T)]`` (float32)."""
        from mcbr_core.features.normalise import normalise

        return normalise(x, self.mean, self.std) if self.mean is not None else np.asarray(x, dtype=np.float32)


def load_clip(ctx: RunContext, i: int) -> np.ndarray:
    """A clip's cached features ``(C, F, T)``; for a ``head``, their clip mean ``(C, F, 1)``."""
    x = np.load(ctx.paths[i], mmap_mode="r")
    if x.shape[:2] != ctx.shape:
        raise ConfigError(f"{ctx.clips[i].id}: features of shape {x.shape}, expected {ctx.shape} x T")
    if ctx.config.mode == "head":  # the clip embedding, as the plugin stores it
        return np.asarray(x, dtype=np.float32).mean(axis=2, keepdims=True)
    return x


def train_sample(ctx: RunContext, plan: Plan, purpose: str) -> np.ndarray:
    """The fold's training clips, or a seeded sample of :data:`NORM_SAMPLE` of them."""
    if len(plan.train) <= NORM_SAMPLE:
        return plan.train
    rng = np.random.default_rng(sub_seed(ctx.config.seed, purpose, plan.fold))
    return rng.choice(plan.train, NORM_SAMPLE, replace=False)


def _norm_place(ctx: RunContext) -> str:
    """Where inference normalises: ``none`` (word ids; given statistics), ``extractor`` or ``model``."""
    if ctx.fitted:
        return "none"  # word ids index a lookup table
    if ctx.config.mode != "net":
        return "model"
    ext_config = getattr(ctx.source.extractor, "config", None)
    if ext_config is not None and getattr(ext_config, "mean", None) is not None:
        return "none"  # the given feature options are normalised already
    return "extractor" if ext_config is not None and hasattr(ext_config, "mean") else "model"


def fit_norm(ctx: RunContext, plan: Plan) -> Norm:
    """Per-row mean and standard deviation of the fold's training features."""
    from mcbr_core.features.normalise import fit_normalisation

    where = _norm_place(ctx)
    if where == "none":
        return Norm("none")
    mean, std = fit_normalisation(load_clip(ctx, int(i)) for i in train_sample(ctx, plan, "norm"))
    return Norm(where, mean, std)


def fit_state(ctx: RunContext, plan: Plan) -> RunContext:
    """Fit the extractor's codebook on the fold's training clips; map every clip to word ids.

    Returns a context for the fold whose features are the word ids ``(1, 1, S)``.
    """
    from mcbr_core.features.audiowords import encode_files, fit_codebook

    cfg = ctx.source.extractor.config
    sample = train_sample(ctx, plan, "codebook")
    log.info("fold %d: fitting the %s codebook on %d clips", plan.fold, ctx.source.name, len(sample))
    state = fit_codebook(
        [ctx.paths[int(i)] for i in sample], cfg, seed=sub_seed(ctx.config.seed, "kmeans", plan.fold)
    )
    paths = encode_files(state, ctx.paths, ctx.cache.dir, config=cfg)
    return replace(ctx, paths=paths, shape=(1, 1), state=state.state_tensors())
