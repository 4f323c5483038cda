"""Settings of playlist generation (the ``mcbr.playlist`` section), frozen and validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcbr_core.errors import ConfigError
from mcbr_core.playlist.base import ORDERS, Constraints

PATHS = ("absolute", "relative")
EXTENSIONS = ("m3u", "m3u8")


@dataclass(frozen=True)
class PlaylistSettings:
    """Defaults of ``beet mcbr-playlist``; each command-line option overrides one.

    Attributes
    ----------
    count
        Tracks per playlist; 0 for no limit.
    duration
        Minutes per playlist; 0 for no limit. With both, the first limit reached ends
        the playlist.
    max_per_artist, max_per_album
        Caps per playlist; 0 for none.
    no_artist_repeat
        Never the same artist twice in a row.
    include_seed
        Put the query's own tracks into the playlist.
    restrict
        A beets query the candidates must match (``"^genres:Christmas"``); empty for none.
    order
        ``smooth``, ``rank`` or ``shuffle`` (see ``Constraints.order``).
    bpm_weight, key_weight
        Weights of tempo and key in the transition cost.
    seed
        Random seed (cluster starts, shuffle).
    format
        beets format of the listing.
    output
        Playlist file written by default (``-o``); empty for none.
    save
        Write into the playlist folder by default (``-s``).
    dir
        The playlist folder; empty for beets' ``playlist.playlist_dir`` or
        ``smartplaylist.playlist_dir``.
    name
        Playlist name; empty to name it from the mode and the query.
    extension
        ``m3u`` or ``m3u8`` for files named after their playlist.
    paths
        ``absolute``, or ``relative`` to the playlist file's folder.
    extended
        Write ``#EXTM3U`` with ``#EXTINF`` durations and titles.
    forward_slash
        Separate path parts with ``/`` on every platform.
    pretend
        Print the playlist and the files it would write; write nothing.
    modes
        Options of each mode (``{"cluster": {"clusters": 8}}``).
    """

    count: int = 25
    duration: float = 0.0
    max_per_artist: int = 3
    max_per_album: int = 2
    no_artist_repeat: bool = True
    include_seed: bool = False
    restrict: str = ""
    order: str = "smooth"
    bpm_weight: float = 0.5
    key_weight: float = 0.5
    seed: int = 0
    format: str = "$artist - $album - $title"
    output: str = ""
    save: bool = False
    dir: str = ""
    name: str = ""
    extension: str = "m3u"
    paths: str = "absolute"
    extended: bool = True
    forward_slash: bool = False
    pretend: bool = False
    modes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("count", "max_per_artist", "max_per_album", "seed"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"mcbr.playlist.{key}: must be a whole number >= 0, got {value!r}")
        if (
            not isinstance(self.duration, (int, float))
            or isinstance(self.duration, bool)
            or self.duration < 0
        ):
            raise ConfigError(f"mcbr.playlist.duration: must be minutes >= 0, got {self.duration!r}")
        for key in ("bpm_weight", "key_weight"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"mcbr.playlist.{key}: must be a number >= 0, got {value!r}")
        for key, allowed in (("order", ORDERS), ("paths", PATHS), ("extension", EXTENSIONS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"mcbr.playlist.{key}: must be one of {', '.join(allowed)}, got {getattr(self, key)!r}"
                )
        for key in ("no_artist_repeat", "include_seed", "save", "extended", "forward_slash", "pretend"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"mcbr.playlist.{key}: must be yes or no, got {getattr(self, key)!r}")
        for key in ("restrict", "format", "output", "dir", "name"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"mcbr.playlist.{key}: must be text, got {getattr(self, key)!r}")
        for mode, options in self.modes.items():
            if not isinstance(options, Mapping):
                raise ConfigError(f"mcbr.playlist.{mode}: must be a mapping of options")

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> PlaylistSettings:
        """From the section's plain values; a mapping holds a mode's options, an unknown key is an error."""
        from mcbr_core.settings import from_mapping

        plain = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
        modes = {k: dict(v) for k, v in data.items() if isinstance(v, Mapping)}
        return from_mapping(cls, {**plain, "modes": modes}, where="mcbr.playlist")

    def constraints(self, **overrides: Any) -> Constraints:
        """The constraints these settings give, with command-line ``overrides`` (same names, minutes)."""
        values = {
            "count": self.count,
            "duration": self.duration,
            "max_per_artist": self.max_per_artist,
            "max_per_album": self.max_per_album,
            "no_artist_repeat": self.no_artist_repeat,
            "include_seed": self.include_seed,
            "order": self.order,
            "bpm_weight": self.bpm_weight,
            "key_weight": self.key_weight,
            "seed": self.seed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        minutes = float(values.pop("duration"))
        count = int(values.pop("count"))
        if minutes < 0 or count < 0:
            raise ConfigError("playlist count and duration must be >= 0 (0: no limit)")
        return Constraints(
            count=count or None,
            duration=minutes * 60.0 or None,
            random_seed=int(values.pop("seed")),
            **values,
        )
