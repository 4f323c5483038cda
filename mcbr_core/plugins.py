"""The plugin manager: loads built-in and third-party hook implementations.

Built-ins are registered exactly like third-party plugins: each module in
``DEFAULT_PLUGINS`` implements some hooks of ``mcbr_core.hookspecs``. Third-party
modules come from the entry-point group ``"mcbr"``. The manager collects every
``register(name, factory)`` call into one registry per kind.
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from mcbr_core import hookspecs
from mcbr_core.errors import PluginError

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "mcbr_core.audio.decode",
    "mcbr_core.features.builtin",
    "mcbr_core.backends.musicnn",
    "mcbr_core.backends.won",
    "mcbr_core.backends.efficientat",
    "mcbr_core.backends.fusion",
    "mcbr_core.backends.trained",
    "mcbr_core.models.registry",
    "mcbr_core.store.index",
    "mcbr_core.training.datasets.builtin",
    "mcbr_core.playlist.strategies",
)

#: hook name -> registry kind
KINDS: dict[str, str] = {
    "register_decoders": "decoder",
    "register_feature_extractors": "feature extractor",
    "register_model_backends": "model backend",
    "register_architectures": "architecture",
    "register_index_backends": "index backend",
    "register_datasets": "dataset",
    "register_playlist_strategies": "playlist strategy",
}


@dataclass
class Registry:
    """Factories of one kind, by unique name."""

    kind: str
    factories: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def add(self, name: str, factory: Callable[..., Any]) -> None:
        """Add a factory; a second registration of a name is an error."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self.factories:
            raise PluginError(f"{self.kind} {name!r} is registered twice")
        self.factories[name] = factory

    def get(self, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name``."""
        try:
            return self.factories[name]
        except KeyError:
            known = ", ".join(sorted(self.factories)) or "none"
            raise PluginError(f"unknown {self.kind} {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self.factories)


class Plugins:
    """A pluggy manager plus the registries its hooks filled.

    Parameters
    ----------
    extra
        Plugin objects or modules to register besides the defaults (tests use this).
    entry_points
        Load third-party plugins from the ``"mcbr"`` entry-point group.
    """

    def __init__(self, extra: tuple[object, ...] = (), *, entry_points: bool = True) -> None:
        self._recipe = (tuple(extra), entry_points)
        self.pm = pluggy.PluginManager("mcbr")
        self.pm.add_hookspecs(hookspecs)
        for name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)
        if entry_points:
            self.pm.load_setuptools_entrypoints("mcbr")
        for plugin in extra:
            self.pm.register(plugin)
        self.pm.check_pending()
        self.registries: dict[str, Registry] = {}
        for hook_name, kind in KINDS.items():
            registry = Registry(kind)
            getattr(self.pm.hook, hook_name)(register=registry.add)
            self.registries[kind] = registry

    def registry(self, kind: str) -> Registry:
        """The registry of one kind (``"decoder"``, ``"model backend"``, ...)."""
        return self.registries[kind]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as the recipe, so a worker process builds the same manager (modules travel by name)."""
        extra, entry_points = self._recipe
        names = tuple(p.__name__ if isinstance(p, types.ModuleType) else p for p in extra)
        return _rebuild, (names, entry_points)


def _rebuild(extra: tuple[object, ...], entry_points: bool) -> Plugins:
    modules = tuple(importlib.import_module(p) if isinstance(p, str) else p for p in extra)
    return Plugins(modules, entry_points=entry_points)


_default: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager with defaults and entry points (cached)."""
    global _default
    if _default is None:
        _default = Plugins()
    return _default


def plugins_with(modules: Sequence[str]) -> Plugins:
    """The plugin manager with these importable modules registered besides the defaults.

    No modules: the process-wide manager (``get_plugins``). Settings name such
    modules in ``extra_plugins`` (a local plugin that is not packaged).
    """
    if not modules:
        return get_plugins()
    from importlib import import_module

    return Plugins(tuple(import_module(m) for m in modules))


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Replace (or drop) the cached manager; for tests and long-lived hosts."""
    global _default
    _default = plugins
