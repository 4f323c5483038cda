"""``KEY=VALUE`` options from a command line, read one way everywhere (``-O``, ``-A``, ``-F``).

Values read as YAML scalars do, as in the beets config: ``yes``/``no``/``true``/
``false`` (and ``on``/``off``) are booleans, ``null``/``none``/``~`` is ``None``,
numbers are numbers, ``[...]``/``{...}`` are JSON lists and mappings, and anything
else is text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from mcbr_core.errors import ConfigError

_TRUE, _FALSE, _NONE = {"yes", "true", "on"}, {"no", "false", "off"}, {"null", "none", "~"}
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def parse_value(text: str) -> Any:
    """One option value (see the module's docstring)."""
    value = text.strip()
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in _NONE:
        return None
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_options(pairs: Sequence[str], *, what: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": value}``.

    Raises
    ------
    ConfigError
        ``-O: expected KEY=VALUE, got 'pool'``.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = parse_value(value)
    return out
