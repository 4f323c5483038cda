"""The network a fold trains: its config (derived from the features and labels) and its seeded build."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcbr_core.training.context import RunContext
from mcbr_core.training.seeds import sub_seed

if TYPE_CHECKING:
    from torch import nn

__all__ = ["build_net", "model_config"]


def model_config(ctx: RunContext) -> dict[str, Any]:
    """The architecture config of the run's network (the model card's ``architecture.config``).

    ``net``: the arch options plus what the data fixes (classes, input channels and
    bins, crop length; a codebook's size), each only where the architecture's config
    has that field. ``probe``/``head``/``stats``: a dense head on the ``C * F`` vector.
    """
    c = ctx.config
    n_classes = len(ctx.labels)
    C, F = ctx.shape
    if c.mode == "net":
        from mcbr_core.backends.trained import architecture_defaults

        derived: dict[str, Any] = {
            "n_classes": n_classes,
            "in_channels": C,
            "n_bins": F,
            "n_frames": ctx.frames,
        }
        if ctx.fitted:  # the lookup table follows the codebook
            ext = ctx.source.extractor.config
            derived.update(n_words=ext.n_words, word_dim=ext.n_components)
        known = architecture_defaults(c.architecture, plugins=ctx.plugins)
        if known:  # the architecture's config takes only its own fields
            derived = {k: v for k, v in derived.items() if k in known}
        return {**c.arch_options, **derived}
    if c.mode == "probe":
        extra = {k: v for k, v in c.arch_options.items() if k in ("hidden", "dropout")}
        return {"in_features": C * F, "n_classes": n_classes, **extra}
    return {"in_features": C * F, "n_classes": n_classes, "hidden": 0, "dropout": 0.0}


def build_net(ctx: RunContext, fold: int) -> nn.Module:
    """The fold's network, initialised from the seed ``(seed, "init", fold)``, on the run's device."""
    import torch

    from mcbr_core.backends.trained import build_architecture

    torch.manual_seed(sub_seed(ctx.config.seed, "init", fold))
    return build_architecture(ctx.config.family, model_config(ctx), plugins=ctx.plugins).to(ctx.device)
