"""Architectures by name: build a model from a plain config dict, and get the dict back.

Imported by the training side and the trained-model backends only (it imports
torch and every architecture module). Example::

    model = build_model("whitell_time", {"n_classes": 16, "n_bins": 256, "n_frames": 643})
    again = build_model(architecture_name(model), config_dict(model))  # same architecture
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mcbr_core.errors import ConfigError
from mcbr_core.models.artist_embedding import ArtistEmbedding, ArtistEmbeddingConfig
from mcbr_core.models.tower import Tower, TowerConfig
from mcbr_core.models.whitell import WhitellConfig, WhitellNet
from mcbr_core.models.xing import Xing, XingConfig
from mcbr_core.models.zhang import ZhangKCNN, ZhangKCNNConfig

__all__ = [
    "ARCHITECTURES",
    "OTHER_MODELS",
    "architecture_name",
    "build_model",
    "config_dict",
    "config_from_dict",
    "embedding_dim",
]

#: Audio models: input ``(B, C, F, T)``, ``forward -> (B, n_classes)`` logits, ``embed -> (B, D)``.
ARCHITECTURES: dict[str, tuple[type, type]] = {
    "xing": (XingConfig, Xing),
    "tower": (TowerConfig, Tower),
    "zhang_kcnn": (ZhangKCNNConfig, ZhangKCNN),
    "whitell_simple": (WhitellConfig, WhitellNet),
    "whitell_time": (WhitellConfig, WhitellNet),
    "whitell_freq": (WhitellConfig, WhitellNet),
    "whitell_timefreq": (WhitellConfig, WhitellNet),
    "whitell_timefreqavg": (WhitellConfig, WhitellNet),
}

#: Models with another interface: the artist-embedding table (``forward(artists, context)``).
OTHER_MODELS: dict[str, tuple[type, type]] = {
    "artist_embedding": (ArtistEmbeddingConfig, ArtistEmbedding),
}

#: Config fields a registered name implies.
_FIXED: dict[str, dict[str, Any]] = {
    f"whitell_{v}": {"variant": v} for v in ("simple", "time", "freq", "timefreq", "timefreqavg")
}


def _lookup(name: str) -> tuple[type, type]:
    try:
        return {**ARCHITECTURES, **OTHER_MODELS}[name]
    except KeyError:
        known = ", ".join(sorted({**ARCHITECTURES, **OTHER_MODELS}))
        raise ConfigError(f"unknown architecture {name!r} (known: {known})") from None


def config_from_dict(name: str, config: Mapping[str, Any]) -> Any:
    """The frozen config of architecture ``name`` from a plain dict (e.g. a model card's).

    JSON lists become tuples; fields the name implies (Whitell's ``variant``) are filled in.

    Raises
    ------
    ConfigError
        On an unknown architecture or key, a contradicted implied field, or a value
        the config rejects.
    """
    cfg_cls, _ = _lookup(name)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise ConfigError(f"{name}: the config must be a mapping, got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = set(config) - known
    if unknown:
        raise ConfigError(
            f"{name}: unknown config keys {sorted(unknown)} (known: {', '.join(sorted(known))})"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    for key, value in _FIXED.get(name, {}).items():
        if values.setdefault(key, value) != value:
            raise ConfigError(f"{name}: {key}={values[key]!r} contradicts the architecture name")
    try:
        return cfg_cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None


def build_model(name: str, config: Mapping[str, Any], *, device: str | torch.device = "cpu") -> nn.Module:
    """Build a randomly initialised model.

    Parameters
    ----------
    name
        A key of :data:`ARCHITECTURES` (or :data:`OTHER_MODELS`).
    config
        Config fields; missing ones take the config's defaults.
    device
        Where the parameters live.

    Raises
    ------
    ConfigError
        See :func:`config_from_dict`.
    """
    _, model_cls = _lookup(name)
    return model_cls(config_from_dict(name, config)).to(device)


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-ready dict (tuples become lists), for a model card."""
    cfg = dataclasses.asdict(model.config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def architecture_name(model: nn.Module) -> str:
    """The registered name that :func:`build_model` rebuilds ``model`` from."""
    if isinstance(model, WhitellNet):
        return f"whitell_{model.config.variant}"
    for name, (_, model_cls) in {**ARCHITECTURES, **OTHER_MODELS}.items():
        if type(model) is model_cls:
            return name
    raise ConfigError(f"{type(model).__name__} is not a registered architecture")


def embedding_dim(model: nn.Module) -> int:
    """Size of ``model.embed(x)``."""
    return int(model.config.embedding_dim)
