"""Registers the built-in datasets (``register_datasets``)."""

from __future__ import annotations

from mcbr_core.hookspecs import Register, hookimpl


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the built-in datasets."""
