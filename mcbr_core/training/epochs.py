"""The epoch loop: AdamW on random crops, precise BatchNorm, early stopping and resume.

The ``net`` and ``probe`` modes train here. Every epoch draws its crops, its batch
order and its dropout from generators seeded by ``(seed, fold, epoch)``, so a resumed
run on the CPU ends with the same weights as an uninterrupted one. After each epoch
the BatchNorm statistics are re-estimated on training crops
(:func:`precise_batchnorm`), the validation part is scored, and ``best`` (when the
validation macro-F1 improved by more than ``min_delta``) and ``last`` checkpoints
are written with the optimizer and early-stopping state; ``patience`` epochs without
improvement stop the fold.

A stacked network (Whitell's TimeFreq) names the models it freezes in
``trained_branches``; each is trained first, on the same plan, as a run of its own
under ``RUN/branches/<name>/``.

The same loop runs on several processes (``torchrun``, ``mcbr train --ray``): each
worker trains on its share of every batch, and worker 0 alone scores, logs and
writes; see :mod:`mcbr_core.training.distributed`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mcbr_core.training import distributed as dist
from mcbr_core.training.cache import random_crop
from mcbr_core.training.cards import load_weights, save_checkpoint
from mcbr_core.training.context import RunContext
from mcbr_core.training.folds import Fold, finish_fold, start_fold
from mcbr_core.training.inference import autocast, evaluate, loss_fn_of, short
from mcbr_core.training.inputs import Norm
from mcbr_core.training.plans import Plan
from mcbr_core.training.results import FoldResult
from mcbr_core.training.seeds import sub_seed, worker_init

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["PRECISE_BN_BATCHES", "EarlyStopping", "precise_batchnorm", "run_fold"]

PRECISE_BN_BATCHES = 100  # batches of training crops that re-estimate BatchNorm statistics after each epoch


class Crops:
    """Map-style dataset of random fixed-length crops (DataLoader input).

    Each item's crop comes from a generator seeded by ``(seed, fold, epoch, index)``,
    so batches do not depend on the number of workers.
    """

    def __init__(
        self, paths: list[str], y: np.ndarray, frames: int, norm: Norm, seed: int, fold: int
    ) -> None:
        self.paths, self.y, self.frames, self.norm = paths, y, frames, norm
        self.seed, self.fold, self.epoch = seed, fold, 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        feats = np.load(self.paths[i], mmap_mode="r")
        rng = np.random.default_rng([self.seed, self.fold, self.epoch, i])
        return self.norm.apply(random_crop(feats, self.frames, rng)), self.y[i]  # (C, F, frames)


@dataclass
class EarlyStopping:
    """The best validation macro-F1 so far, its epoch, and the epochs since it improved."""

    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, score: float | None, epoch: int, *, min_delta: float, patience: int) -> bool:
        """Record an epoch's score (``None``: no validation part, every epoch counts); whether it is the best."""
        improved = score is None or score > self.best_score + min_delta or self.best_epoch < 0
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = (
                (score if score is not None else self.best_score),
                epoch,
                0,
            )
        else:
            self.bad_epochs += 1
        self.stopped = bool(patience and self.bad_epochs >= patience)
        return improved


@dataclass
class _Optimiser:
    """AdamW and the gradient scaler of float16 mixed precision (disabled elsewhere)."""

    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler

    @classmethod
    def of(cls, fold: Fold) -> _Optimiser:
        import torch

        c, ctx = fold.ctx.config, fold.ctx
        opt = torch.optim.AdamW(fold.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        return cls(opt, torch.amp.GradScaler("cuda", enabled=ctx.amp and not torch.cuda.is_bf16_supported()))

    def state(self, epoch: int, stopping: EarlyStopping) -> dict[str, Any]:
        """Resume state: tensors and primitives only (loads with ``weights_only=True``)."""
        return {
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": epoch,
            "best_score": float(stopping.best_score),
            "best_epoch": stopping.best_epoch,
            "bad_epochs": stopping.bad_epochs,
            "stopped": stopping.stopped,
        }

    def resume(self, fold: Fold) -> tuple[int, EarlyStopping]:
        """Load the last checkpoint and its state; the first epoch to run, and the early-stopping state.

        Worker 0 reads them and hands them to the other workers of a distributed run.
        """
        import torch

        weights, state = dist.share(lambda: (load_weights(fold.files.last, device="cpu"),
                                             torch.load(fold.files.state, map_location="cpu", weights_only=True)))  # fmt: skip
        fold.net.load_state_dict(weights)
        self.opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        stopping = EarlyStopping(float(state["best_score"]), int(state["best_epoch"]), int(state["bad_epochs"]),
                                 bool(state["stopped"]))  # fmt: skip
        log.info(
            "fold %d: resuming after epoch %d (best %d)",
            fold.plan.fold,
            int(state["epoch"]),
            stopping.best_epoch,
        )
        return int(state["epoch"]) + 1, stopping


def _loader(
    ctx: RunContext, data: Crops, plan: Plan, epoch: int, purpose: str, *, shard: bool = False
) -> Any:
    """A seeded, shuffled loader over the epoch's training crops (``purpose`` seeds the order).

    Every batch has ``min(batch_size, len(data))`` crops (a last, smaller one is
    dropped: no batch of one for BatchNorm). ``shard``: this worker's share of each
    batch (:class:`mcbr_core.training.distributed.ShardedBatches`).
    """
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    c = ctx.config
    data.epoch = epoch
    order = torch.Generator().manual_seed(sub_seed(c.seed, purpose, plan.fold, epoch))
    # DataLoader(shuffle=True, generator=order) builds these: the same batches, drawn the same way
    batches: Any = BatchSampler(
        RandomSampler(data, generator=order), c.batch_size, drop_last=len(data) > c.batch_size
    )
    return DataLoader(
        data,
        batch_sampler=dist.ShardedBatches(batches) if shard else batches,
        generator=order,
        num_workers=c.num_workers,
        worker_init_fn=worker_init,
        pin_memory=ctx.device.startswith("cuda"),
    )


def _train_epoch(fold: Fold, net: nn.Module, optimiser: _Optimiser, data: Crops, epoch: int) -> float:
    """One pass over the training crops with ``net`` (``fold.net``, or its DDP wrapper); the mean training loss."""
    import torch

    ctx, w = fold.ctx, dist.world()
    batch = min(ctx.config.batch_size, len(data))
    dist.check_batch(batch)
    loader = _loader(ctx, data, fold.plan, epoch, "order", shard=True)
    workers = () if w.size == 1 else ("worker", w.rank)  # one process: the seed of every earlier run
    torch.manual_seed(sub_seed(ctx.config.seed, "dropout", fold.plan.fold, epoch, *workers))
    loss_fn = loss_fn_of(ctx)
    opt, scaler = optimiser.opt, optimiser.scaler
    net.train()
    total, count = 0.0, 0
    for x, y in loader:
        x = x.to(ctx.device, non_blocking=True)  # (b, C, F, frames): this worker's b of the batch's clips
        y = y.to(ctx.device, non_blocking=True)
        with autocast(ctx):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss if w.size == 1 else loss * dist.loss_weight(len(x), batch)).backward()
        scaler.step(opt)
        scaler.update()
        total += float(loss.detach()) * len(x)
        count += len(x)
    total, count = dist.all_sum([total, count])
    return total / max(count, 1)


def precise_batchnorm(net: nn.Module, batches: Iterable[torch.Tensor]) -> int:
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


def _precise_batchnorm(fold: Fold, data: Crops, epoch: int) -> None:
    """:func:`precise_batchnorm` over (at most ``PRECISE_BN_BATCHES`` of) the epoch's training crops."""
    loader = _loader(fold.ctx, data, fold.plan, epoch, "precise-bn")

    def batches() -> Iterator[torch.Tensor]:
        for i, (x, _) in enumerate(loader):
            if i >= PRECISE_BN_BATCHES:
                break
            yield x.to(fold.ctx.device, non_blocking=True)

    precise_batchnorm(fold.net, batches())


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _epoch(fold: Fold, net: nn.Module, optimiser: _Optimiser, stopping: EarlyStopping, data: Crops, epoch: int
           ) -> None:  # fmt: skip
    """Train one epoch, score it on the validation part, log it and write its checkpoints.

    In a distributed run every worker trains; worker 0 alone re-estimates BatchNorm,
    scores, logs and writes, and the others take its early-stopping verdict.
    """
    import torch

    ctx, plan, c, w = fold.ctx, fold.plan, fold.ctx.config, dist.world()
    t0 = time.perf_counter()
    train_loss = _train_epoch(fold, net, optimiser, data, epoch)
    val: dict[str, Any] = {}
    if w.main:
        _precise_batchnorm(fold, data, epoch)
        val = evaluate(ctx, fold.net, plan.val, fold.norm, embeddings=False) if len(plan.val) else {}
    score = dist.share(lambda: val.get("macro_f1"))
    improved = stopping.update(score, epoch, min_delta=c.min_delta, patience=c.patience)
    if not w.main:
        return
    seconds = time.perf_counter() - t0
    ctx.metrics.append({"fold": plan.fold, "epoch": epoch, "phase": "epoch", "train_loss": train_loss,
                        **short(val, "val_"), "best": improved, "lr": optimiser.opt.param_groups[0]["lr"],
                        "seconds": round(seconds, 3), **({"workers": w.size} if w.size > 1 else {})})  # fmt: skip
    log.info("fold %d epoch %d/%d: train loss %.4f, val loss %s, val macro-F1 %s%s (%.1fs)", plan.fold, epoch + 1,
             c.epochs, train_loss, _fmt(val.get("loss")), _fmt(val.get("macro_f1")), " *" if improved else "",
             seconds)  # fmt: skip
    if improved:
        save_checkpoint(
            ctx, plan, fold.net, fold.norm, fold.files.best, metrics=val, epoch=epoch, epochs=epoch + 1
        )
    save_checkpoint(
        ctx, plan, fold.net, fold.norm, fold.files.last, metrics=val, epoch=epoch, epochs=epoch + 1
    )
    torch.save(optimiser.state(epoch, stopping), fold.files.state)


def _train_branches(fold: Fold, *, resume: bool) -> None:
    """Train the models a stacked network freezes (``net.trained_branches``) on this fold's data.

    Whitell's TimeFreq stacks *trained* Time and Freq models. Each branch is trained
    here as a run of its own under ``RUN/branches/<name>/``, on the same plan (so no
    test clip is seen), and its best epoch goes to ``net.load_branches(**weights)``.
    """
    ctx, plan = fold.ctx, fold.plan
    weights = {}
    for name, architecture in fold.net.trained_branches.items():
        config = replace(ctx.config, architecture=architecture, name=f"{ctx.model_name}-{name}")
        log.info("fold %d: training the %s branch (%s) first", plan.fold, name, architecture)
        result = run_fold(
            replace(ctx, config=config, run_dir=ctx.run_dir / "branches" / name), plan, resume=resume
        )
        log.info("fold %d: %s branch: %s macro-F1 %s", plan.fold, name, result.evaluated_on,
                 _fmt(result.metrics.get("macro_f1")))  # fmt: skip
        weights[name] = dist.share(lambda path=result.model_path: load_weights(path, device="cpu"))
    fold.net.load_branches(**weights)


def _train_part_digest(fold: Fold) -> str:
    """A digest of the fold's training clips and targets (the workers of a distributed run must agree on it)."""
    ids = "\n".join(fold.ctx.clips[int(i)].id for i in fold.plan.train)
    return hashlib.sha1(
        ids.encode() + np.ascontiguousarray(fold.ctx.y[fold.plan.train]).tobytes()
    ).hexdigest()


def run_fold(ctx: RunContext, plan: Plan, *, resume: bool) -> FoldResult:
    """Train (or resume) one fold for ``config.epochs`` epochs or until patience runs out; evaluate its best epoch.

    In a distributed run, worker 0 decides whether to resume and evaluates the best
    epoch; the other workers return a result without metrics.
    """
    fold = start_fold(ctx, plan)
    c = fold.ctx.config
    w = dist.world()
    if w.size > 1:
        dist.agree(_train_part_digest(fold), f"training clips in fold {plan.fold}")
    resuming = dist.share(lambda: resume and fold.files.state.exists() and fold.files.last.exists())
    if (
        getattr(fold.net, "trained_branches", None) and not resuming
    ):  # a resumed network's checkpoint holds them
        _train_branches(fold, resume=resume)
    optimiser = _Optimiser.of(fold)
    start, stopping = optimiser.resume(fold) if resuming else (0, EarlyStopping())
    fold.ctx.metrics.truncate(plan.fold, start)
    data = Crops([fold.ctx.paths[i] for i in plan.train], fold.ctx.y[plan.train], fold.ctx.frames, fold.norm, c.seed,
                 plan.fold)  # fmt: skip
    net = dist.wrap(fold.net)
    epoch = start - 1
    for epoch in range(start, c.epochs if not stopping.stopped else start):
        _epoch(fold, net, optimiser, stopping, data, epoch)
        if stopping.stopped:
            log.info(
                "fold %d: no better validation macro-F1 for %d epochs; stopping",
                plan.fold,
                stopping.bad_epochs,
            )
            break
    epochs_run = max(epoch + 1, start)
    if not w.main:
        return FoldResult(plan.fold, plan.split, stopping.best_epoch, epochs_run,
                          stopping.stopped and epochs_run < c.epochs, {}, "", fold.files.best)  # fmt: skip
    return finish_fold(fold, best_epoch=stopping.best_epoch, epochs_run=epochs_run,
                       stopped_early=stopping.stopped and epochs_run < c.epochs)  # fmt: skip
