"""Registers the built-in datasets (``register_datasets``).

Each factory is ``factory(root: Path, **options) -> Dataset``; the loader module is
imported only when the factory is called, so registering costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcbr_core.hookspecs import Register, hookimpl
from mcbr_core.training.datasets.base import Dataset


def fma(root: Path, **options: Any) -> Dataset:
    """FMA (``subset``, ``audio``, ``skip``, ``skip_known_bad``, ``min_count``)."""
    from mcbr_core.training.datasets.fma import load_fma

    return load_fma(Path(root), **options)


def gtzan(root: Path, **options: Any) -> Dataset:
    """GTZAN (``filtered``, ``folds``, ``seed``, ``artists``)."""
    from mcbr_core.training.datasets.gtzan import load_gtzan

    return load_gtzan(Path(root), **options)


def webapi(root: Path, **options: Any) -> Dataset:
    """Whitell's WebAPI dataset (``min_count``)."""
    from mcbr_core.training.datasets.webapi import load_webapi

    return load_webapi(Path(root), **options)


def emotify(root: Path, **options: Any) -> Dataset:
    """Emotify (``threshold``)."""
    from mcbr_core.training.datasets.emotify import load_emotify

    return load_emotify(Path(root), **options)


def fourq(root: Path, **options: Any) -> Dataset:
    """4Q (``min_count``)."""
    from mcbr_core.training.datasets.fourq import load_fourq

    return load_fourq(Path(root), **options)


def mirex(root: Path, **options: Any) -> Dataset:
    """The MIREX-like mood set (no options)."""
    from mcbr_core.training.datasets.mirex import load_mirex

    return load_mirex(Path(root), **options)


def tags(root: Path, **options: Any) -> Dataset:
    """4Q, Emotify, the MIREX-like set and GTZAN on the plugin's genre and mood vocabularies (``poprock``)."""
    from mcbr_core.training.datasets.tags import load_tags

    return load_tags(Path(root), **options)


def library(root: Path, **options: Any) -> Dataset:
    """A labelled library (``rows``, ``min_count``)."""
    from mcbr_core.training.datasets.library import load_library

    return load_library(Path(root) if root is not None else None, **options)


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the built-in datasets."""
    register("fma", fma)
    register("gtzan", gtzan)
    register("webapi", webapi)
    register("emotify", emotify)
    register("4q", fourq)
    register("mirex", mirex)
    register("mcbr-tags", tags)
    register("library", library)


def load_dataset(kind: str, root: Path | str | None, plugins: Any = None, **options: Any) -> Dataset:
    """Load a registered dataset by name (``plugins``: a ``Plugins``; default the process-wide one).

    Raises
    ------
    ConfigError
        On an option the loader does not know.
    """
    from mcbr_core.errors import ConfigError
    from mcbr_core.plugins import get_plugins

    factory = (plugins or get_plugins()).registry("dataset").get(kind)
    try:
        return factory(Path(root) if root is not None else None, **options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ConfigError(f"dataset {kind}: {exc}") from None
