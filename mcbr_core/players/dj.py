"""The sonic DJ: keep a player's queue a few tracks ahead with tracks that sound like what plays.

Pure decisions, no player: a host (``mcbr_core.players.mpd``) shows the ``Dj`` what the
player is doing as a ``PlayerState`` and carries out the ``Actions`` it returns.

- The *seeds* are the current song and the last few songs played before it that were
  not skipped (a song left before ``skip_seconds``, or half its length, is a skip), the
  most recent weighing most. Skipping a song therefore steers the radio at once; with
  ``replan`` the tracks the DJ queued that have not played yet are chosen again.
- The *history* (the last ``history`` songs played) is never queued again, nor is a
  track the listener took out of the queue.
- Each new track is picked like a ``radio`` step: near the seeds' centroid, and a smooth
  transition from the track before it (``RadioOptions`` weights), within the playlist
  caps (``Constraints``) counted over the last ``Constraints.count`` tracks played and
  queued. When the caps leave nothing, they are lifted (then the artist-repeat rule)
  rather than letting the queue run dry.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.playlist.base import Constraints, Track
from mcbr_core.playlist.constraints import Selection, Transitions
from mcbr_core.playlist.space import Space, distances, prepare
from mcbr_core.playlist.strategies import RadioOptions

log = logging.getLogger(__name__)

#: Caps count over this many recent tracks when the playlist count is 0 (no limit).
DEFAULT_WINDOW = 25


@dataclass(frozen=True)
class DjSettings:
    """The ``mcbr.dj`` section.

    Attributes
    ----------
    ahead
        Tracks kept queued after the current one.
    history
        The last this many songs played are never queued again.
    seeds
        The current song and the songs played before it that the next tracks sound
        like (skipped songs left out).
    skip_seconds
        A song left before this many seconds (or before half its length, if shorter)
        was skipped: it is no seed, and with ``replan`` the DJ's queued tracks are
        chosen again.
    replan
        After a skip, take out the tracks the DJ queued that have not played and choose
        again (the listener's own tracks are never touched).
    reconnect
        Seconds to keep trying when the player goes away (it restarts, the network
        drops); 0 stops at once.
    """

    ahead: int = 5
    history: int = 50
    seeds: int = 3
    skip_seconds: float = 30.0
    replan: bool = True
    reconnect: float = 60.0

    def __post_init__(self) -> None:
        if self.ahead < 1:
            raise ConfigError(f"mcbr.dj.ahead: must be at least 1, got {self.ahead}")
        if self.history < 0:
            raise ConfigError(f"mcbr.dj.history: must be >= 0, got {self.history}")
        if self.seeds < 1:
            raise ConfigError(f"mcbr.dj.seeds: must be at least 1, got {self.seeds}")
        if self.skip_seconds < 0:
            raise ConfigError(f"mcbr.dj.skip_seconds: must be >= 0, got {self.skip_seconds}")
        if self.reconnect < 0:
            raise ConfigError(f"mcbr.dj.reconnect: must be >= 0 seconds, got {self.reconnect}")


@dataclass(frozen=True)
class QueueEntry:
    """One song of the player's queue.

    Attributes
    ----------
    song_id
        The player's id of this queue entry (MPD's ``Id``), stable while it is queued.
    item_id
        The library item it plays; ``None`` for a stream or a file outside the library.
    duration
        Seconds; 0 when unknown.
    """

    song_id: str
    item_id: int | None
    duration: float = 0.0


@dataclass(frozen=True)
class PlayerState:
    """What the player is doing.

    Attributes
    ----------
    state
        ``play``, ``pause`` or ``stop``.
    current
        The current song (playing, paused, or where a stopped player would start), or
        ``None`` when there is none.
    ahead
        The songs queued after it, in order (the whole queue when there is no current song).
    elapsed
        Seconds into the current song.
    """

    state: str
    current: QueueEntry | None
    ahead: tuple[QueueEntry, ...] = ()
    elapsed: float = 0.0


@dataclass(frozen=True)
class Actions:
    """What the host should do to the queue: delete these songs, then append these items."""

    delete: tuple[str, ...] = ()
    add: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.delete or self.add)


@dataclass(frozen=True)
class Played:
    """A song that played: its item (``None``: not in the library) and whether it was skipped."""

    item_id: int | None
    skipped: bool = False


@dataclass
class _Current:
    entry: QueueEntry
    elapsed: float
    seen_at: float
    state: str


def weighted_centre(space: Space, ids: Sequence[int], weights: Sequence[float]) -> np.ndarray | None:
    """The weighted mean ``(D,)`` of the items' prepared vectors (on the sphere unless euclidean)."""
    got, vecs = space.vectors(ids)
    if not len(got):
        return None
    by_id = dict(zip((int(i) for i in ids), weights, strict=True))
    w = np.array([by_id[int(i)] for i in got.tolist()], dtype=np.float64)  # (s,)
    mean = (w[:, None] * vecs).sum(axis=0) / w.sum()  # (D,)
    return mean if space.metric == "euclidean" else prepare(mean, space.metric)


def choose(
    space: Space,
    *,
    seeds: Sequence[int],
    weights: Sequence[float] | None = None,
    recent: Sequence[int] = (),
    banned: Iterable[int] = (),
    n: int,
    constraints: Constraints | None = None,
    radio: RadioOptions | None = None,
) -> list[int]:
    """The next ``n`` item ids to queue, in play order.

    Parameters
    ----------
    space
        Candidates (the host's restriction applied), vectors and tracks.
    seeds
        Items the picks should sound like, most recent first.
    weights
        One weight per seed (default: equal).
    recent
        Items played and queued, oldest first: the caps count over them, and the
        first pick follows the last of them.
    banned
        Items never picked (the history, the queue, the listener's removals).
    n
        How many to pick.
    constraints
        Caps and the artist-repeat rule (its ``count`` and ``duration`` are not used);
        default ``Constraints()``.
    radio
        Weights of the distance to the seeds and of the transition, and the pool size;
        default ``RadioOptions()``.

    Returns
    -------
    list[int]
        At most ``n`` ids; fewer only when no candidate is left at all.
    """
    if n <= 0 or not seeds:
        return []
    constraints = constraints or Constraints()
    radio = radio or RadioOptions()
    centre = weighted_centre(space, seeds, weights if weights is not None else [1.0] * len(seeds))
    if centre is None:
        return []
    skip = {int(i) for i in banned} | {int(i) for i in recent}
    pool = _pool(space, centre, radio.pool, skip)
    if pool is None:
        return []
    ids, vecs, tracks = pool
    to_centre = distances(vecs, centre)  # (m,)
    transitions = Transitions(vecs, tracks, constraints)
    known = space.tracks([int(i) for i in recent])
    history = [known[int(i)] for i in recent if int(i) in known]
    prev = _previous(space, int(recent[-1]) if recent else int(seeds[0]), centre)
    window = constraints.count or DEFAULT_WINDOW
    position = {i: k for k, i in enumerate(ids)}
    picks: list[int] = []
    levels = _relaxations(constraints)
    taken = np.zeros(len(ids), dtype=bool)
    for level, c in enumerate(levels):
        while len(picks) < n:
            played = (history + [tracks[position[p]] for p in picks])[-window:]
            cost = radio.seed_weight * to_centre + radio.previous_weight * transitions.from_point(*prev)
            pick = _first_fit(replace(c, count=None, duration=None), played, cost, taken, tracks)
            if pick is None:
                break
            taken[pick] = True
            picks.append(ids[pick])
            prev = (vecs[pick], tracks[pick])
        if len(picks) >= n:
            break
        if level + 1 < len(levels):
            log.debug("dj: the caps leave no track near the seeds; relaxing them")
    return picks


def _relaxations(constraints: Constraints) -> list[Constraints]:
    """The caps, then without the per-artist and per-album caps, then without the artist-repeat rule."""
    return [
        constraints,
        replace(constraints, max_per_artist=0, max_per_album=0),
        replace(constraints, max_per_artist=0, max_per_album=0, no_artist_repeat=False),
    ]


def _pool(
    space: Space, centre: np.ndarray, size: int, skip: set[int]
) -> tuple[list[int], np.ndarray, list[Track]] | None:
    """The ``size`` candidates nearest ``centre`` (not in ``skip``) that have a vector and a
    track: their ids, vectors ``(m, D)`` and tracks; ``None`` when there are none."""
    pool_ids = space.nearest(centre, size, exclude=skip).tolist()
    got, vecs = space.vectors(space.candidate_ids(pool_ids))
    by_id = space.tracks(got.tolist())
    keep = [k for k, i in enumerate(got.tolist()) if i in by_id]
    ids = [int(got[k]) for k in keep]
    if not ids:
        return None
    return ids, vecs[keep], [by_id[i] for i in ids]  # vecs[keep]: (m, D)


def _previous(space: Space, prev_id: int, centre: np.ndarray) -> tuple[np.ndarray, Track | None]:
    """Where the first pick's transition starts: the item's vector and track, else the centre."""
    prev_got, prev_vec = space.vectors([prev_id])
    prev_track = space.track(prev_id)
    return (prev_vec[0], prev_track) if len(prev_got) else (centre, None)


def _first_fit(
    constraints: Constraints, played: list[Track], cost: np.ndarray, taken: np.ndarray, tracks: list[Track]
) -> int | None:
    """The cheapest candidate not yet ``taken`` that the caps allow after ``played``."""
    sel = Selection(constraints)
    for track in played:
        sel.add(track)
    for k in np.argsort(np.where(taken, np.inf, cost), kind="stable").tolist():
        if taken[k]:
            break
        if sel.fits(tracks[k]):
            return k
    return None


@dataclass
class Dj:
    """The DJ's memory and decisions for one player.

    Parameters
    ----------
    space
        Candidates, vectors and tracks.
    settings
        ``ahead``, ``history``, ``seeds``, ``skip_seconds``, ``replan``.
    constraints
        Caps and transition weights (``mcbr.playlist``).
    radio
        Radio step weights (``mcbr.playlist.radio``).
    """

    space: Space
    settings: DjSettings = field(default_factory=DjSettings)
    constraints: Constraints = field(default_factory=Constraints)
    radio: RadioOptions = field(default_factory=RadioOptions)

    def __post_init__(self) -> None:
        self.history: deque[Played] = deque(maxlen=max(self.settings.history, self.settings.seeds, 1))
        self.avoid: set[int] = set()  # taken out of the queue by the listener, or refused by the player
        self.ours: dict[str, int] = {}  # song id -> item, for the songs the DJ queued
        self._current: _Current | None = None
        self._were_current: set[str] = set()
        self._adopt: set[int] = set()  # the DJ's items to find again by item after a reconnection
        self._steer = False
        self.queued = 0  # songs queued so far, for the summary

    # -- what happened --------------------------------------------------------

    def start(self, played: Sequence[int | None]) -> None:
        """Songs played before the DJ started (the queue before the current song), oldest first."""
        if not self.history:
            self.history.extend(Played(i) for i in played)  # the deque keeps the newest

    def added(self, song_id: str, item_id: int) -> None:
        """The host queued ``item_id`` as ``song_id``."""
        self.ours[str(song_id)] = int(item_id)
        self.queued += 1

    def reconnected(self) -> None:
        """The connection was lost and made again: the player may have restarted and numbered its
        queue anew. Forget its song ids (the DJ's songs are found again by item) and the current
        song (it is not counted as played); keep the history."""
        self._adopt = set(self.ours.values())
        self.ours.clear()
        self._were_current.clear()
        self._current = None
        self._steer = False

    def refused(self, item_id: int) -> None:
        """The player could not queue ``item_id`` (not in its database): never offer it again."""
        self.avoid.add(int(item_id))

    def _observe(self, state: PlayerState, now: float) -> None:
        if self._adopt:
            for queued in state.ahead:
                if queued.item_id in self._adopt:
                    self.ours[queued.song_id] = queued.item_id
                    self._adopt.discard(queued.item_id)
            self._adopt.clear()
        entry = state.current
        current = self._current
        if current is not None and (entry is None or entry.song_id != current.entry.song_id):
            heard = current.elapsed + (now - current.seen_at if current.state == "play" else 0.0)
            duration = current.entry.duration
            threshold = (
                min(self.settings.skip_seconds, duration / 2) if duration > 0 else self.settings.skip_seconds
            )
            skipped = heard < threshold
            self.history.append(Played(current.entry.item_id, skipped))
            if skipped:
                log.debug("dj: skipped after %.0f s: steering", heard)
                self._steer = True
        if entry is None:
            self._current = None
            return
        if current is None or entry.song_id != current.entry.song_id:
            self._were_current.add(entry.song_id)
        self._current = _Current(entry, state.elapsed, now, state.state)
        queued = {e.song_id for e in state.ahead} | {entry.song_id}
        for song_id in [s for s in self.ours if s not in queued]:
            item_id = self.ours.pop(song_id)
            if song_id not in self._were_current:
                self.avoid.add(item_id)  # the listener took it out (or jumped past it)

    # -- what to do -------------------------------------------------------------

    def seeds(self) -> list[int]:
        """The current song, then the last songs played before it that were not skipped (newest first)."""
        out: list[int] = []
        if self._current is not None and self._current.entry.item_id is not None:
            out.append(self._current.entry.item_id)
        for played in reversed(self.history):
            if len(out) >= self.settings.seeds:
                break
            if not played.skipped and played.item_id is not None and played.item_id not in out:
                out.append(played.item_id)
        return out[: self.settings.seeds]

    def recent(self) -> list[int]:
        """The last songs played, newest last (at most ``history``)."""
        items = [p.item_id for p in self.history if p.item_id is not None]
        return items[-self.settings.history :] if self.settings.history else []

    def update(self, state: PlayerState, now: float) -> Actions:
        """Observe the player at time ``now`` (seconds, any monotonic clock); say what to change."""
        self._observe(state, now)
        ahead = list(state.ahead)
        delete: list[str] = []
        if self._steer:
            self._steer = False
            if self.settings.replan:
                delete = [e.song_id for e in ahead if e.song_id in self.ours]
                for song_id in delete:
                    self.ours.pop(song_id)
                ahead = [e for e in ahead if e.song_id not in set(delete)]
        need = self.settings.ahead - len(ahead)
        seeds = self.seeds()
        if need <= 0 or not seeds:
            return Actions(tuple(delete))
        current = (
            [state.current.item_id] if state.current is not None and state.current.item_id is not None else []
        )
        queued = [e.item_id for e in ahead if e.item_id is not None]
        recent = self.recent() + current + queued
        picks = choose(
            self.space,
            seeds=seeds,
            weights=[0.5**k for k in range(len(seeds))],
            recent=recent,
            banned=self.avoid,
            n=need,
            constraints=self.constraints,
            radio=self.radio,
        )
        if len(picks) < need:
            log.debug("dj: %d of %d tracks found (the candidates ran out)", len(picks), need)
        return Actions(tuple(delete), tuple(picks))
