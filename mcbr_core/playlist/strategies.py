"""Built-in playlist strategies (registered through ``register_playlist_strategies``)."""

from __future__ import annotations

from mcbr_core.hookspecs import Register, hookimpl


@hookimpl
def register_playlist_strategies(register: Register) -> None:
    """Register the built-in strategies."""
