"""Plain data of playlist generation: tracks, constraints, requests and results.

A playlist strategy (registered through ``register_playlist_strategies``) receives a
``PlaylistRequest``: the seed items of each query, an embedding ``Space`` to search,
the ``Constraints`` every playlist must respect and the strategy's own options. It
returns ``Playlist`` objects. Nothing here knows beets: a host turns its items into
``Track`` values and its embeddings into a ``Space``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mcbr_core.errors import ConfigError

if TYPE_CHECKING:
    from mcbr_core.playlist.space import Space

#: How a playlist whose order a strategy leaves open is ordered.
ORDERS = ("smooth", "rank", "shuffle")


@dataclass(frozen=True)
class Track:
    """What playlist generation knows of one library item.

    Attributes
    ----------
    item_id
        The host's item id (beets item id).
    artist
        Artist name; ``""`` for unknown (never capped, never a repeat).
    album_id
        Album key for the per-album cap: the beets album id, or any hashable key
        (a singleton's album name); ``None`` is never capped.
    duration
        Seconds; 0 when unknown.
    bpm
        Tempo, or ``None`` when unknown (beets stores 0 for unknown).
    key
        Musical key as tagged (``"Am"``, ``"F#"``, ``"Dbm"``, ``"8A"``), or ``None``.
    genres, mood
        Tags, used to name clusters.
    path
        File path (a ``str``, decoded with ``os.fsdecode``).
    title, album
        For display and naming.
    """

    item_id: int
    artist: str = ""
    album_id: Hashable | None = None
    duration: float = 0.0
    bpm: float | None = None
    key: str | None = None
    genres: tuple[str, ...] = ()
    mood: tuple[str, ...] = ()
    path: str = ""
    title: str = ""
    album: str = ""

    def __post_init__(self) -> None:
        if self.duration is None or self.duration < 0:
            object.__setattr__(self, "duration", 0.0)
        if self.bpm is not None and not self.bpm > 0:
            object.__setattr__(self, "bpm", None)
        if not self.key:
            object.__setattr__(self, "key", None)
        object.__setattr__(self, "genres", tuple(g for g in self.genres if g))
        object.__setattr__(self, "mood", tuple(m for m in self.mood if m))

    @property
    def artist_key(self) -> str:
        """The artist compared by the caps (case- and space-insensitive); ``""`` is unknown."""
        return " ".join(self.artist.lower().split())

    @property
    def recording_key(self) -> tuple[str, str] | None:
        """``(artist, title)``, to spot one song twice (album and compilation); ``None`` if untitled."""
        title = " ".join(self.title.lower().split())
        return (self.artist_key, title) if title and self.artist_key else None


@dataclass(frozen=True)
class Constraints:
    """What every playlist respects, whatever the strategy.

    Attributes
    ----------
    count
        At most this many tracks; ``None`` for no limit.
    duration
        At most this many seconds in total; ``None`` for no limit. With both limits,
        the first one reached ends the playlist.
    max_per_artist, max_per_album
        At most this many tracks per artist / album; 0 for no limit.
    no_artist_repeat
        Never the same artist twice in a row.
    include_seed
        Put the query's own tracks into the playlist (they are left out by default).
        They are exempt from the caps but count towards them and towards the limits.
    order
        How a playlist whose order the strategy leaves open is ordered: ``smooth``
        (a nearest-neighbour tour, improved by 2-opt), ``rank`` (best match first) or
        ``shuffle``. Radio and path playlists are ordered as they are walked.
    bpm_weight, key_weight
        Weights of the tempo and key terms of the transition cost between two tracks
        (each term is in [0, 1]; the embedding distance is the third term).
    random_seed
        Seed of every random choice (k-means start, shuffle).
    """

    count: int | None = 25
    duration: float | None = None
    max_per_artist: int = 0
    max_per_album: int = 0
    no_artist_repeat: bool = True
    include_seed: bool = False
    order: str = "smooth"
    bpm_weight: float = 0.5
    key_weight: float = 0.5
    random_seed: int = 0

    def __post_init__(self) -> None:
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ConfigError(f"playlist count must be a positive whole number (or none), got {self.count!r}")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"playlist duration must be positive (or none), got {self.duration!r}")
        for name in ("max_per_artist", "max_per_album"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"playlist {name} must be a whole number >= 0 (0: no limit), got {value!r}")
        if self.order not in ORDERS:
            raise ConfigError(f"playlist order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        for name in ("bpm_weight", "key_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"playlist {name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Playlist:
    """One generated playlist.

    Attributes
    ----------
    name
        A readable name (``"Radio: Miles Davis - So What"``, ``"Sad Jazz"``).
    item_ids
        The tracks, in play order.
    ordered
        ``True`` when the strategy's order is the point (a walk, a path): the host's
        ``order`` setting then leaves it alone.
    scores
        Optional per-item relevance (lower is closer), shown as ``$mcbr_distance``.
    prefix
        The first ``prefix`` tracks keep their place (the seed, with ``include_seed``);
        the ``order`` setting orders the rest.
    after
        The item the playlist continues from (the seed's last track): a smooth order
        starts next to it. ``None``: it starts with the strategy's first track.
    """

    name: str
    item_ids: tuple[int, ...]
    ordered: bool = False
    scores: Mapping[int, float] = field(default_factory=dict)
    prefix: int = 0
    after: int | None = None


@dataclass(frozen=True)
class PlaylistRequest:
    """Everything a strategy needs.

    Attributes
    ----------
    seeds
        Item ids of each query the user gave, in the query's order (one tuple per
        query; ``()`` for none).
    space
        The embedding space with candidates and track metadata.
    constraints
        Limits, caps and order.
    options
        The strategy's own options (from ``mcbr.playlist.<mode>`` and the command line).
    labels
        The queries as the user wrote them, for naming playlists.
    """

    seeds: tuple[tuple[int, ...], ...]
    space: Space
    constraints: Constraints = field(default_factory=Constraints)
    options: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()


@runtime_checkable
class PlaylistStrategy(Protocol):
    """A way to make playlists, registered as ``register(name, factory)``; ``factory()`` builds it.

    Attributes
    ----------
    name
        The mode on the command line (``beet mcbr-playlist NAME``).
    queries
        ``(min, max)`` number of queries the mode takes (``(1, 1)`` for radio,
        ``(2, 2)`` for path, ``(0, 1)`` for cluster).
    seeded
        Whether the queries' tracks are a seed, left out of the playlist unless
        ``include_seed`` (radio, path, signature); ``False`` when they are the
        material the playlists are made of (cluster).
    summary
        One line for ``--help`` and docs.
    defaults
        Every option the strategy reads, with its default; unknown option keys are an error.
    """

    name: str
    queries: tuple[int, int]
    seeded: bool
    summary: str
    defaults: Mapping[str, Any]

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        """The playlists for a request (one for most modes, several for ``cluster``)."""
        ...
