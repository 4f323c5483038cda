"""Hook specifications of beets-mcbr (pluggy project ``"mcbr"``).

Every replaceable part of the pipeline is registered through one of these hooks.
Built-ins use them exactly as third-party plugins do (see ``plugins.DEFAULT_PLUGINS``);
a third-party package exposes a module under the entry-point group ``"mcbr"``.

Each hook receives a ``register`` callback: ``register(name, factory)``. Names are
unique across all plugins; a duplicate is an error. See ``docs/hooks.md`` for the
factory signatures and a worked example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mcbr")
hookimpl = pluggy.HookimplMarker("mcbr")

Register = Callable[[str, Any], None]


@hookspec
def register_decoders(register: Register) -> None:
    """Register audio decoders: ``register(name, factory)``.

    ``factory()`` returns a ``mcbr_core.audio.decode.Decoder``.
    """


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register feature extractors: ``register(name, factory)``.

    ``factory(options: dict)`` returns a ``mcbr_core.features.base.FeatureExtractor``
    mapping audio ``(n_samples,)`` to features ``(C, F, T)``.
    """


@hookspec
def register_model_backends(register: Register) -> None:
    """Register model backends: ``register(name, factory)``.

    ``factory(*, model, card, device, options)`` returns a
    ``mcbr_core.backends.base.ModelBackend``.
    """


@hookspec
def register_architectures(register: Register) -> None:
    """Register network architectures for training and the ``trained`` backend: ``register(name, factory)``.

    ``factory(config: dict)`` returns a ``torch.nn.Module`` whose ``forward(x)`` maps
    features ``(B, C, F, T)`` to logits ``(B, n_classes)`` and whose ``embed(x)`` gives
    ``(B, D)``. A factory may also offer ``factory.defaults() -> dict``, the config
    fields it takes (see ``mcbr_core.models.registry.Architecture``).
    """


@hookspec
def register_index_backends(register: Register) -> None:
    """Register nearest-neighbour index backends: ``register(name, factory)``.

    ``factory(*, path, dim, metric, model_id, options)`` returns a
    ``mcbr_core.store.index.IndexBackend``.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register training/evaluation datasets: ``register(name, factory)``.

    ``factory(root: Path, **options)`` returns a ``mcbr_core.training.datasets.base.Dataset``.
    """


@hookspec
def register_playlist_strategies(register: Register) -> None:
    """Register playlist strategies: ``register(name, factory)``.

    ``factory()`` returns a ``mcbr_core.playlist.base.PlaylistStrategy``.
    """
