"""Mixes: playlists declared in the config and written again whenever the library changes.

A mix is a saved ``mcbr-playlist`` command: a mode (any registered playlist strategy),
a query, and overrides of the ``mcbr.playlist`` settings. With ``for_each: FIELD`` it is
a family of mixes, one per value of the field among the query's tracks (``"Radio
$artist"`` over ``loved:1``: one radio per favourite artist, seeded by that artist's
loved tracks).

This module holds the schema and the bookkeeping (names, what changed on disk); the
host finds the tracks and runs the strategies.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcbr_core.errors import ConfigError
from mcbr_core.playlist import m3u
from mcbr_core.playlist.base import ORDERS
from mcbr_core.playlist.settings import EXTENSIONS
from mcbr_core.settings import from_mapping

#: ``$field`` or ``${field}`` in a name.
_PLACEHOLDER = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

#: What a mix file became: written for the first time, rewritten, or left as it was.
STATUSES = ("new", "changed", "unchanged")


@dataclass(frozen=True)
class MixSpec:
    """One entry of ``mcbr.mixes``.

    Attributes
    ----------
    name
        The playlist's name, and its file's (``<name>.m3u``). With ``for_each`` it must
        hold ``$FIELD`` (``"Radio $artist"``), replaced by each value.
    mode
        A registered playlist strategy: ``radio``, ``path``, ``cluster``, ``signature``
        or a plugin's.
    query
        A beets query, as on the command line (``"mood:Calm year:2000..2010"``); for
        ``path`` two queries separated by a lone ``to``. Empty: the whole library
        (``cluster``), or every value of ``for_each``.
    for_each
        A field: one mix per value among the query's tracks, seeded by the tracks
        holding that value (each value of a list field such as ``genres`` counts).
    limit
        With ``for_each``, at most this many mixes, the values with most tracks first;
        0 for no limit.
    restrict, count, duration, max_per_artist, max_per_album, no_artist_repeat,
    include_seed, order, seed, extension
        Override the ``mcbr.playlist`` setting of the same name (``None``: keep it).
        ``duration`` is minutes; alone it lifts the track count, as ``--duration`` does.
    options
        Options of the mode, over ``mcbr.playlist.<mode>`` (``{clusters: 4}``).
    """

    name: str
    mode: str = "radio"
    query: str = ""
    for_each: str = ""
    limit: int = 25
    restrict: str | None = None
    count: int | None = None
    duration: float | None = None
    max_per_artist: int | None = None
    max_per_album: int | None = None
    no_artist_repeat: bool | None = None
    include_seed: bool | None = None
    order: str | None = None
    seed: int | None = None
    extension: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name: every mix needs a name")
        if not isinstance(self.mode, str) or not self.mode:
            raise ConfigError(f"mode: must name a playlist mode, got {self.mode!r}")
        if self.for_each and not re.fullmatch(r"\w+", self.for_each):
            raise ConfigError(f"for_each: must name one field, got {self.for_each!r}")
        fields_named = set(placeholders(self.name))
        if self.for_each and self.for_each not in fields_named:
            raise ConfigError(f"name: must hold ${self.for_each} to tell the mixes of for_each apart")
        extra = fields_named - {self.for_each}
        if extra:
            raise ConfigError(
                f"name: ${min(extra)} is not for_each's field"
                + (
                    f" (for_each: {self.for_each})"
                    if self.for_each
                    else "; set for_each to make one mix per value"
                )
            )
        for key in ("limit", "count", "max_per_artist", "max_per_album", "seed"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"{key}: must be >= 0, got {value}")
        if self.duration is not None and self.duration < 0:
            raise ConfigError(f"duration: must be minutes >= 0, got {self.duration}")
        if self.order is not None and self.order not in ORDERS:
            raise ConfigError(f"order: must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.extension is not None and self.extension not in EXTENSIONS:
            raise ConfigError(f"extension: must be one of {', '.join(EXTENSIONS)}, got {self.extension!r}")
        if not isinstance(self.options, Mapping):
            raise ConfigError("options: must be a mapping of the mode's options")

    def expand(self, value: str) -> str:
        """The name of the mix for one value of ``for_each`` (the name itself without ``for_each``)."""
        if not self.for_each:
            return self.name
        return string.Template(self.name).safe_substitute({self.for_each: value}).strip()


def placeholders(text: str) -> list[str]:
    """The field names of ``$field`` / ``${field}`` in ``text`` (``$$`` is a literal ``$``)."""
    return [a or b for a, b in _PLACEHOLDER.findall(text.replace("$$", ""))]


def load_mixes(data: object) -> tuple[MixSpec, ...]:
    """The ``mcbr.mixes`` list, validated: unknown keys and duplicate names are errors.

    Raises
    ------
    ConfigError
        Naming the entry (``mcbr.mixes[2].cout: unknown key ...``).
    """
    if data in (None, ""):
        return ()
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise ConfigError(f"mcbr.mixes: must be a list of mixes, got {data!r}")
    specs: list[MixSpec] = []
    seen: dict[str, int] = {}
    for n, entry in enumerate(data):
        where = f"mcbr.mixes[{n}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: must be a mapping (name, mode, query, ...), got {entry!r}")
        if "name" not in entry:
            raise ConfigError(f"{where}: every mix needs a name")
        spec = from_mapping(MixSpec, dict(entry), where=where)
        key = spec.name.strip().lower()
        if key in seen:
            raise ConfigError(f"{where}: the name {spec.name!r} is taken by mcbr.mixes[{seen[key]}]")
        seen[key] = n
        specs.append(spec)
    return tuple(specs)


@dataclass(frozen=True)
class MixFile:
    """One playlist file of a mix.

    Attributes
    ----------
    name
        The playlist's name.
    path
        Its file.
    status
        ``new``, ``changed`` or ``unchanged`` (see ``STATUSES``).
    tracks, seconds
        What it holds.
    was
        Tracks the file held before, when it changed.
    """

    name: str
    path: Path
    status: str
    tracks: int
    seconds: float
    was: int | None = None


def compare(path: Path, data: bytes) -> tuple[str, int | None]:
    """Whether writing ``data`` to ``path`` is ``new``, ``changed`` or ``unchanged``, and the old count."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        return "new", None
    if old == data:
        return "unchanged", None
    return "changed", len(m3u.parse(old)[1])
