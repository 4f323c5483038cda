"""Architectures by name: the papers' networks, registered through the ``register_architectures`` hook.

Every architecture the training loop and the ``trained`` backend can build is a
factory registered under a unique name (see :mod:`mcbr_core.hookspecs`); this module
is the built-in plugin that registers the papers' networks, exactly as a third-party
plugin registers its own. Each is an :class:`Architecture`: its frozen config class
and its ``nn.Module`` class, named by import path and imported on first use (so
registering costs nothing at start-up), plus the config fields its name implies
(Whitell's ``variant``). Example::

    model = build_model("whitell_time", {"n_classes": 16, "n_bins": 256, "n_frames": 643})
    again = build_model(architecture_name(model), config_dict(model))  # same architecture

Whitell's artist-embedding table (:class:`mcbr_core.models.artist_embedding.ArtistEmbedding`)
is not an architecture in this sense (its input is artist ids, not features): build it
from its config class.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcbr_core.errors import ConfigError, PluginError
from mcbr_core.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mcbr_core.plugins import Plugins

__all__ = [
    "Architecture",
    "architecture_name",
    "build_model",
    "builtin_architectures",
    "config_dict",
    "config_from_dict",
    "embedding_dim",
]


def _import(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Architecture:
    """A network family built from a frozen config dataclass: a factory for the ``register_architectures`` hook.

    Attributes
    ----------
    name
        The registered name.
    config_class, model_class
        ``"module:Class"`` of the config dataclass and of the ``nn.Module`` built from it.
    fixed
        Config fields the name implies (``{"variant": "time"}`` for ``whitell_time``).
    """

    name: str
    config_class: str
    model_class: str
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def config_from_dict(self, config: Mapping[str, Any]) -> Any:
        """The frozen config from a plain dict (e.g. a model card's); see :func:`config_from_dict`."""
        cfg_cls = _import(self.config_class)
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            config = dataclasses.asdict(config)
        if not isinstance(config, Mapping):
            raise ConfigError(f"{self.name}: the config must be a mapping, got {type(config).__name__}")
        known = {f.name for f in dataclasses.fields(cfg_cls)}
        unknown = set(config) - known
        if unknown:
            raise ConfigError(
                f"{self.name}: unknown config keys {sorted(unknown)} (known: {', '.join(sorted(known))})"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        for key, value in self.fixed.items():
            if values.setdefault(key, value) != value:
                raise ConfigError(f"{self.name}: {key}={values[key]!r} contradicts the architecture name")
        try:
            return cfg_cls(**values)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.name}: {exc}") from None

    def defaults(self) -> dict[str, Any]:
        """The config's fields and their defaults (training passes a derived field only where there is one)."""
        return dataclasses.asdict(self.config_from_dict({}))

    def __call__(self, config: Mapping[str, Any]) -> nn.Module:
        """A randomly initialised network of this architecture."""
        return _import(self.model_class)(self.config_from_dict(config))

    def built(self, model: nn.Module) -> bool:
        """Whether ``model`` is a network of this architecture (its class, and the fields the name implies)."""
        if type(model) is not _import(self.model_class):
            return False
        return all(getattr(model.config, k) == v for k, v in self.fixed.items())


def builtin_architectures() -> list[Architecture]:
    """The papers' networks (``docs/architectures.md``), as this module registers them."""
    whitell = ("mcbr_core.models.whitell:WhitellConfig", "mcbr_core.models.whitell:WhitellNet")
    return [
        Architecture("xing", "mcbr_core.models.xing:XingConfig", "mcbr_core.models.xing:Xing"),
        Architecture("tower", "mcbr_core.models.tower:TowerConfig", "mcbr_core.models.tower:Tower"),
        Architecture(
            "zhang_kcnn", "mcbr_core.models.zhang:ZhangKCNNConfig", "mcbr_core.models.zhang:ZhangKCNN"
        ),
        *(
            Architecture(f"whitell_{v}", *whitell, fixed={"variant": v})
            for v in ("simple", "time", "freq", "timefreq", "timefreqavg")
        ),
    ]


@hookimpl
def register_architectures(register: Register) -> None:
    """Register the papers' networks."""
    for arch in builtin_architectures():
        register(arch.name, arch)


def _registry(plugins: Plugins | None) -> Any:
    from mcbr_core.plugins import get_plugins

    return (plugins or get_plugins()).registry("architecture")


def _lookup(name: str, plugins: Plugins | None) -> Architecture:
    registry = _registry(plugins)
    try:
        arch = registry.get(name)
    except PluginError:
        raise ConfigError(
            f"unknown architecture {name!r} (known: {', '.join(sorted(registry.names()))})"
        ) from None
    if not isinstance(arch, Architecture):
        raise ConfigError(f"architecture {name!r} has no config dataclass: build it with its factory")
    return arch


def config_from_dict(name: str, config: Mapping[str, Any], *, plugins: Plugins | None = None) -> Any:
    """The frozen config of architecture ``name`` from a plain dict (e.g. a model card's).

    JSON lists become tuples; fields the name implies (Whitell's ``variant``) are filled in.

    Raises
    ------
    ConfigError
        On an unknown architecture or key, a contradicted implied field, or a value
        the config rejects.
    """
    return _lookup(name, plugins).config_from_dict(config)


def build_model(
    name: str,
    config: Mapping[str, Any],
    *,
    device: str | torch.device = "cpu",
    plugins: Plugins | None = None,
) -> nn.Module:
    """Build a randomly initialised model.

    Parameters
    ----------
    name
        A registered architecture with a config dataclass (see :func:`builtin_architectures`).
    config
        Config fields; missing ones take the config's defaults.
    device
        Where the parameters live.
    plugins
        Plugin manager (default: the process-wide one).

    Raises
    ------
    ConfigError
        See :func:`config_from_dict`.
    """
    return _lookup(name, plugins)(config).to(device)


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-ready dict (tuples become lists), for a model card."""
    cfg = dataclasses.asdict(model.config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def architecture_name(model: nn.Module, *, plugins: Plugins | None = None) -> str:
    """The registered name that :func:`build_model` rebuilds ``model`` from."""
    for name, arch in _registry(plugins).factories.items():
        if isinstance(arch, Architecture) and arch.built(model):
            return name
    raise ConfigError(f"{type(model).__name__} is not a registered architecture")


def embedding_dim(model: nn.Module) -> int:
    """Size of ``model.embed(x)``."""
    return int(model.config.embedding_dim)
