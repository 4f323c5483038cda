"""One rule for unknown config keys: an error naming the key and the nearest known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from mcbr_core.errors import ConfigError


def check_keys(keys: Iterable[str], known: Iterable[str], *, where: str) -> None:
    """Reject keys that are not ``known``.

    Parameters
    ----------
    keys
        The keys a config section holds.
    known
        The keys it may hold.
    where
        The section, for the message (``"mcbr.similar"``).

    Raises
    ------
    ConfigError
        ``mcbr.similar: unknown key 'cout' (did you mean 'count'?)``, for the first unknown key.
    """
    valid = sorted(set(known))
    for key in sorted(set(keys) - set(valid)):
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(valid)}"
        raise ConfigError(f"{where}: unknown key {key!r} ({hint})")
