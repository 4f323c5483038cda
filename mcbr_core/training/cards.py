"""Trained model files: the card a run writes with each checkpoint, and the weights it reads back.

Every checkpoint (a fold's ``best`` and ``last``, the run's final ``model``) is a
model file of :mod:`mcbr_core.models.checkpoint` that the ``trained`` backend runs:
its card holds the architecture config, the feature config (with the normalisation
statistics and any learned extractor state), the labels, the embedding facts, the
training facts (data, split, fold, seed, epochs, config, the fingerprint of the
clips it was fitted or selected on) and the metrics of its epoch. An extractor's
learned state (Zhang's codebook) travels as ``features.state.*`` tensors beside the
weights; :func:`load_weights` strips them again.

Cards are read with :func:`mcbr_core.models.checkpoint.read_card`, which stays there:
the engine, the analyzer and ``mcbr eval`` read every model's card with it, trained
or shipped, without importing anything heavy.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcbr_core.backends.trained import STATE_PREFIX
from mcbr_core.training.config import CLIP_MODES
from mcbr_core.training.context import RunContext
from mcbr_core.training.fingerprint import fingerprint
from mcbr_core.training.inputs import Norm
from mcbr_core.training.networks import model_config
from mcbr_core.training.plans import Plan
from mcbr_core.training.results import FoldResult

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["finalise_model", "load_weights", "save_checkpoint"]


def _embedding_card(ctx: RunContext, norm: Norm) -> dict[str, Any]:
    """``features`` of a probe or head: the base model's extractor, and the embedding it reads."""
    from mcbr_core.models.shipped import shipped_models

    c = ctx.config
    base = ctx.source.analyzer.backend
    model = (
        c.base_model if c.base_model in shipped_models() else str(Path(c.base_model).expanduser().resolve())
    )
    card: dict[str, Any] = {
        "extractor": base.extractor,
        "version": str(base.feature_version),
        "config": dict(base.extractor_options),
        "embedding_of": {"model": model, "id": base.model_id,
                         "layer": "penultimate, clip mean" if c.mode == "head" else "penultimate, per patch"},
        "patch_frames": base.patch_frames,
        "patch_hop": base.patch_hop,
    }  # fmt: skip
    if c.mode == "head":
        card["pool"] = "clip"  # the head reads the mean embedding of the analysed patches
    return card


def _extractor_card(ctx: RunContext, norm: Norm) -> dict[str, Any]:
    """``features`` of a network or the statistics baseline: the extractor, its options and version."""
    options = dict(ctx.config.feature_options)
    version = str(ctx.source.extractor.version)
    factory = ctx.source._registry("feature extractor").get(ctx.source.name)
    if norm.where == "extractor":
        options = {**options, "mean": list(norm.mean or ()), "std": list(norm.std or ())}
        version = str(factory(dict(options)).version)
    if ctx.state is not None:
        version = str(factory({**options, "state": ctx.state}).version)
    net = ctx.config.mode == "net"
    return {
        "extractor": ctx.source.name,
        "version": version,
        "config": options,
        "patch_frames": ctx.frames if net else None,
        "patch_hop": ctx.hop if net else None,
    }


def _features_card(ctx: RunContext, norm: Norm) -> dict[str, Any]:
    maker = _embedding_card if ctx.config.mode in ("probe", "head") else _extractor_card
    card = maker(ctx, norm)
    if ctx.state is not None:
        card["state"] = {"tensors": STATE_PREFIX, "keys": sorted(ctx.state)}
    card["normalisation"] = {"where": norm.where}
    if norm.where == "model":
        card["normalisation"].update(mean=list(norm.mean or ()), std=list(norm.std or ()))
    return card


def _versions(ctx: RunContext) -> dict[str, str]:
    import torch

    import mcbr_core

    out = {"mcbr": mcbr_core.__version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version()}  # fmt: skip
    if ctx.config.mode in CLIP_MODES:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    return out


def _embedding_dim(ctx: RunContext, net: nn.Module) -> int:
    import torch

    x = torch.zeros((1, *ctx.shape, ctx.frames), device=next(net.parameters()).device)
    was = net.training
    net.eval()
    with torch.inference_mode():
        d = int(net.embed(x).shape[-1])
    net.train(was)
    return d


def _training_card(ctx: RunContext, plan: Plan, *, epoch: int, epochs: int) -> dict[str, Any]:
    c = ctx.config
    return {
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
    }  # fmt: skip


def _card(ctx: RunContext, plan: Plan, net: nn.Module, norm: Norm, *, metrics: dict[str, Any], epoch: int,
          epochs: int, name: str, weights_digest: str) -> dict[str, Any]:  # fmt: skip
    labels = ctx.labels
    return {
        "id": f"{name}-{weights_digest}",
        "name": name,
        "backend": "trained",
        "architecture": {"family": ctx.config.family, "config": model_config(ctx)},
        "features": _features_card(ctx, norm),
        "heads": {ctx.task: labels},
        "activation": {ctx.task: "sigmoid" if ctx.multilabel else "softmax"},
        "tag_kinds": {ctx.task: dict.fromkeys(labels, ctx.info.kind)},
        "embedding": {"dim": _embedding_dim(ctx, net), "layer": "embed() (penultimate), mean over patches",
                      "metric": "angular"},
        "training": _training_card(ctx, plan, epoch=epoch, epochs=epochs),
        "metrics": {k: v for k, v in metrics.items() if k != "labels"},
        "licence": ctx.dataset.licence,
        "versions": _versions(ctx),
    }  # fmt: skip


def _tensors(ctx: RunContext, net: nn.Module) -> dict[str, torch.Tensor]:
    """The weights (on the CPU), and the extractor's learned state under :data:`STATE_PREFIX`."""
    import torch

    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if ctx.state is not None:
        tensors.update(
            {
                STATE_PREFIX + k: torch.from_numpy(np.array(v, dtype=np.float32))  # a writable copy
                for k, v in ctx.state.items()
            }
        )
    return tensors


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].numpy().tobytes())
    return h.hexdigest()[:8]


def save_checkpoint(ctx: RunContext, plan: Plan, net: nn.Module, norm: Norm, path: Path, *, metrics: dict[str, Any],
                    epoch: int, epochs: int, fit: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write the network, with its card, to ``path`` (``fit``: what a closed-form fit chose, for the card)."""
    from mcbr_core.models.checkpoint import save_model

    tensors = _tensors(ctx, net)
    name = f"{ctx.model_name}-fold{plan.fold}" if ctx.config.folds else ctx.model_name
    card = _card(ctx, plan, net, norm, metrics=metrics, epoch=epoch, epochs=epochs, name=name,
                 weights_digest=_digest(tensors))  # fmt: skip
    if fit:
        card["training"]["fit"] = fit
    return save_model(path, tensors, card)


def load_weights(path: Path, *, device: str) -> dict[str, torch.Tensor]:
    """A checkpoint's network weights (a ``state_dict``, without the extractor's state)."""
    from mcbr_core.models.checkpoint import load_model

    tensors, _ = load_model(path, device=device)
    return {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}


def finalise_model(best: Path, final: Path, result: FoldResult) -> None:
    """Copy the best checkpoint to ``final``, with the final evaluation in its card."""
    from mcbr_core.models.checkpoint import load_model, save_model

    tensors, card = load_model(best)
    card = {k: v for k, v in card.items() if k != "format"}
    card["metrics"] = {f"{result.evaluated_on}": {k: v for k, v in result.metrics.items() if k != "labels"}}
    card["training"] = {**card["training"], "epochs": result.epochs_run, "best_epoch": result.best_epoch}
    save_model(final, tensors, card)
