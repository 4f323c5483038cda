"""One fold's start and end, shared by the epoch loop and the closed-form fit.

:func:`start_fold` fits what the fold's inputs need (an extractor's learned state,
the normalisation statistics) on its training part and builds the seeded network;
:func:`finish_fold` evaluates the fold's best checkpoint on the test part (the
validation part when there is none) and logs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mcbr_core.training.cards import load_weights
from mcbr_core.training.context import RunContext
from mcbr_core.training.inference import evaluate
from mcbr_core.training.inputs import Norm, fit_norm, fit_state
from mcbr_core.training.networks import build_net
from mcbr_core.training.plans import Plan
from mcbr_core.training.results import FoldResult
from mcbr_core.training.runs import FoldFiles

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["Fold", "finish_fold", "start_fold"]


@dataclass(frozen=True)
class Fold:
    """A started fold: its context (with any learned state), plan, normalisation, network and files."""

    ctx: RunContext
    plan: Plan
    norm: Norm
    net: nn.Module
    files: FoldFiles


def start_fold(ctx: RunContext, plan: Plan) -> Fold:
    """Fit the fold's inputs on its training part and build its network."""
    log.info("fold %d: %d train, %d val, %d test clips (%s)", plan.fold, len(plan.train), len(plan.val),
             len(plan.test), plan.split)  # fmt: skip
    files = FoldFiles.of(ctx.run_dir, plan.fold)
    if ctx.fitted:
        ctx = fit_state(ctx, plan)
    norm = fit_norm(ctx, plan)
    net = build_net(ctx, plan.fold)
    if ctx.state is not None and hasattr(net, "init_lookup"):
        net.init_lookup(np.array(ctx.state["centroids"]))  # Zhang et al.: the table starts at the codebook
    return Fold(ctx, plan, norm, net, files)


def _final_part(fold: Fold, *, refitted_on_val: bool) -> tuple[str, np.ndarray]:
    """The part the best checkpoint is evaluated on, and its name: test, else val, else train."""
    plan = fold.plan
    part, idx = ("test", plan.test) if len(plan.test) else ("val", plan.val)
    if not len(plan.test) and refitted_on_val:
        part = "val (in-sample: the head was refitted on it)"
    if not len(idx):
        part, idx = "train", plan.train
    return part, idx


def finish_fold(fold: Fold, *, best_epoch: int, epochs_run: int, stopped_early: bool,
                refitted_on_val: bool = False) -> FoldResult:  # fmt: skip
    """Load the best checkpoint, evaluate it (with the embedding metrics) and log the evaluation."""
    ctx, plan = fold.ctx, fold.plan
    fold.net.load_state_dict(load_weights(fold.files.best, device=ctx.device))
    part, idx = _final_part(fold, refitted_on_val=refitted_on_val)
    final = evaluate(ctx, fold.net, idx, fold.norm, embeddings=True)
    ctx.metrics.append({"fold": plan.fold, "phase": "eval", "split": part, "epoch": best_epoch, **final})
    return FoldResult(
        fold=plan.fold,
        split=plan.split,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        stopped_early=stopped_early,
        metrics=final,
        evaluated_on=part,
        model_path=fold.files.best,
    )
