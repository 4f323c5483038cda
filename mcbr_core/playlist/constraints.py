"""Caps, limits and the order of a playlist.

Three jobs, shared by every strategy:

- ``Selection`` keeps the running counts (tracks, seconds, per artist, per album,
  songs already in) and says whether one more track fits;
- ``Transitions`` prices going from one track to the next: the embedding distance
  plus a tempo term and a key term (harmonic mixing on the Camelot wheel), each in
  [0, 1] and used only when both tracks carry the tag;
- ``tour`` orders a set of tracks: a greedy nearest-neighbour tour that never puts
  an artist twice in a row (it looks ahead, so it never paints itself into a
  corner), improved by 2-opt.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from mcbr_core.playlist.base import Constraints, Track

# -- keys and tempo ------------------------------------------------------------

_PITCH = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_NOTE = re.compile(r"^([a-g])\s*([#♯b♭]?)\s*(m|min|minor|maj|major|dur|moll)?$")
_CAMELOT = re.compile(r"^(\d{1,2})\s*([ab])$")
_OPEN_KEY = re.compile(r"^(\d{1,2})\s*([dm])$")

#: A tempo ratio this far apart (about 15 %) costs the full tempo term.
BPM_SPAN = math.log(1.15)


def camelot(key: str | None) -> tuple[int, int] | None:
    """A key as its Camelot position ``(number 1..12, 0 minor / 1 major)``, or ``None`` if unreadable.

    Reads note names (``"Am"``, ``"F#"``, ``"Dbm"``, ``"Bb minor"``, ``"E major"``),
    Camelot codes (``"8A"``, ``"12B"``) and Open Key codes (``"1m"``, ``"6d"``).
    """
    if not key:
        return None
    text = key.strip().lower().replace("♯", "#").replace("♭", "b")
    if m := _CAMELOT.match(text):
        number = int(m.group(1))
        return (number, 0 if m.group(2) == "a" else 1) if 1 <= number <= 12 else None
    if m := _OPEN_KEY.match(text):
        number = int(m.group(1))
        if not 1 <= number <= 12:
            return None
        return ((number + 6) % 12 + 1, 0 if m.group(2) == "m" else 1)
    if m := _NOTE.match(text):
        pitch = _PITCH[m.group(1)] + {"#": 1, "b": -1, "": 0}[m.group(2)]
        minor = m.group(3) in ("m", "min", "minor", "moll")
        major_pitch = (pitch + 3) % 12 if minor else pitch % 12  # a minor key sits with its relative major
        number = (7 * major_pitch + 8) % 12 or 12
        return (number, 0 if minor else 1)
    return None


def key_cost(a: tuple[int, int] | None, b: tuple[int, int] | None) -> float:
    """Cost in [0, 1] of mixing key ``a`` into ``b``: 0 same key, 0.25 a harmonic neighbour.

    A step round the Camelot wheel or a switch between relative major and minor is one
    move; each further move adds 0.25. Unknown keys cost nothing.
    """
    if a is None or b is None:
        return 0.0
    diff = abs(a[0] - b[0])
    moves = min(diff, 12 - diff) + (a[1] != b[1])
    return min(1.0, 0.25 * moves)


def bpm_cost(a: float | None, b: float | None) -> float:
    """Cost in [0, 1] of a tempo change, half and double time counting as equal; unknown costs nothing."""
    if not a or not b:
        return 0.0
    ratio = abs(math.log(b / a))
    ratio = min(ratio, abs(ratio - math.log(2.0)))
    return min(1.0, ratio / BPM_SPAN)


class Transitions:
    """Prices of going from one track to another, over a fixed set of tracks.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, D)]
        Prepared vectors of the tracks.
    tracks
        The tracks, in the same order.
    constraints
        Weights of the tempo and key terms.
    """

    def __init__(self, vectors: np.ndarray, tracks: Sequence[Track], constraints: Constraints) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float64)
        self.sq = (self.vectors**2).sum(axis=1)  # (n,): distances as |v|^2 + |p|^2 - 2 v.p, one product each
        self.tracks = list(tracks)
        self.bpm_weight = constraints.bpm_weight
        self.key_weight = constraints.key_weight
        self.log_bpm = np.array([math.log(t.bpm) if t.bpm else np.nan for t in self.tracks])  # (n,)
        keys = [camelot(t.key) for t in self.tracks]
        self.key_number = np.array([k[0] if k else -1 for k in keys])  # (n,)
        self.key_mode = np.array([k[1] if k else -1 for k in keys])  # (n,)

    def __len__(self) -> int:
        return len(self.tracks)

    def _tempo(self, log_bpm: np.ndarray, others: np.ndarray) -> np.ndarray:
        ratio = np.abs(others - log_bpm)
        ratio = np.minimum(ratio, np.abs(ratio - math.log(2.0)))
        return np.nan_to_num(np.minimum(1.0, ratio / BPM_SPAN), nan=0.0)

    def _key(
        self, number: np.ndarray, mode: np.ndarray, numbers: np.ndarray, modes: np.ndarray
    ) -> np.ndarray:
        diff = np.abs(numbers - number)
        moves = np.minimum(diff, 12 - diff) + (modes != mode)
        cost = np.minimum(1.0, 0.25 * moves)
        return np.where((number < 0) | (numbers < 0), 0.0, cost)

    def from_point(self, vector: np.ndarray, track: Track | None) -> np.ndarray:
        """Costs ``(n,)`` of going from a point (and its track's tempo and key, if any) to each track."""
        vector = np.asarray(vector, dtype=np.float64)
        cost = np.sqrt(np.maximum(self.sq + float(vector @ vector) - 2.0 * (self.vectors @ vector), 0.0))
        if track is None:
            return cost
        if self.bpm_weight and track.bpm:
            cost = cost + self.bpm_weight * self._tempo(np.array(math.log(track.bpm)), self.log_bpm)
        if self.key_weight and (key := camelot(track.key)) is not None:
            cost = cost + self.key_weight * self._key(
                np.array(key[0]), np.array(key[1]), self.key_number, self.key_mode
            )
        return cost

    def row(self, i: int) -> np.ndarray:
        """Costs ``(n,)`` from track ``i`` to every track."""
        return self.from_point(self.vectors[i], self.tracks[i])

    def matrix(self) -> np.ndarray:
        """All costs ``(n, n)`` (symmetric, zero diagonal)."""
        sq = self.sq
        cost = np.sqrt(
            np.maximum(sq[:, None] + sq[None, :] - 2.0 * self.vectors @ self.vectors.T, 0.0)
        )  # (n, n)
        if self.bpm_weight:
            cost += self.bpm_weight * self._tempo(self.log_bpm[:, None], self.log_bpm[None, :])
        if self.key_weight:
            cost += self.key_weight * self._key(
                self.key_number[:, None],
                self.key_mode[:, None],
                self.key_number[None, :],
                self.key_mode[None, :],
            )
        np.fill_diagonal(cost, 0.0)
        return cost


# -- caps and limits -------------------------------------------------------------


class Selection:
    """The tracks chosen so far and what they use of the limits and caps."""

    def __init__(self, constraints: Constraints) -> None:
        self.constraints = constraints
        self.tracks: list[Track] = []
        self.seconds = 0.0
        self.artists: Counter[str] = Counter()
        self.albums: Counter[object] = Counter()
        self._ids: set[int] = set()
        self._recordings: set[tuple[str, str]] = set()

    @property
    def ids(self) -> list[int]:
        """Item ids in the order added."""
        return [t.item_id for t in self.tracks]

    def __len__(self) -> int:
        return len(self.tracks)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids

    def full(self) -> bool:
        """Whether the track count or the duration is reached."""
        c = self.constraints
        if c.count is not None and len(self.tracks) >= c.count:
            return True
        return c.duration is not None and self.seconds >= c.duration

    def room_for(self, track: Track) -> bool:
        """Whether ``track`` fits the count and the duration (the caps aside)."""
        c = self.constraints
        if c.count is not None and len(self.tracks) >= c.count:
            return False
        return c.duration is None or self.seconds + track.duration <= c.duration + 1e-6

    def blocked(self, track: Track) -> bool:
        """Whether ``track`` can never join: a duplicate, a cap or the duration (these only tighten)."""
        c = self.constraints
        if track.item_id in self._ids or (
            track.recording_key is not None and track.recording_key in self._recordings
        ):
            return True
        if c.duration is not None and self.seconds + track.duration > c.duration + 1e-6:
            return True
        if c.count is not None and len(self.tracks) >= c.count:
            return True
        if c.max_per_artist and track.artist_key and self.artists[track.artist_key] >= c.max_per_artist:
            return True
        return bool(
            c.max_per_album and track.album_id is not None and self.albums[track.album_id] >= c.max_per_album
        )

    def repeats(self, track: Track, previous: Track | None = None) -> bool:
        """Whether ``track`` right after ``previous`` (default: the last one) repeats the artist."""
        if not self.constraints.no_artist_repeat or not track.artist_key:
            return False
        previous = previous if previous is not None else (self.tracks[-1] if self.tracks else None)
        return previous is not None and previous.artist_key == track.artist_key

    def fits(self, track: Track, *, previous: Track | None = None) -> bool:
        """Whether ``track`` may come next (not blocked, no artist repeat)."""
        return not self.blocked(track) and not self.repeats(track, previous)

    def reserve(self, track: Track) -> None:
        """Count a track towards the caps and duplicates without placing it (a path's destination)."""
        self._ids.add(track.item_id)
        if track.recording_key is not None:
            self._recordings.add(track.recording_key)
        if track.artist_key:
            self.artists[track.artist_key] += 1
        if track.album_id is not None:
            self.albums[track.album_id] += 1

    def add(self, track: Track) -> None:
        """Add a track (the caller checked ``fits``, or it is a seed the user asked for)."""
        self.tracks.append(track)
        self._ids.add(track.item_id)
        if track.recording_key is not None:
            self._recordings.add(track.recording_key)
        self.seconds += track.duration
        if track.artist_key:
            self.artists[track.artist_key] += 1
        if track.album_id is not None:
            self.albums[track.album_id] += 1


def select(ranked: Iterable[Track], constraints: Constraints, *, forced: Sequence[Track] = ()) -> list[Track]:
    """The best tracks of a ranking that respect the limits and caps (the order comes later).

    With ``no_artist_repeat``, no artist may hold more than half the tracks, or no
    order could keep it apart: a track that would break that waits until others have
    joined, and is dropped if none do.

    Parameters
    ----------
    ranked
        Candidates, best first.
    constraints
        Limits and caps.
    forced
        Tracks taken first, whatever the caps (the seed with ``include_seed``).

    Returns
    -------
    list[Track]
        ``forced`` (as far as the limits allow), then the chosen tracks in rank order.
    """
    sel = Selection(constraints)
    for track in forced:
        if track.item_id not in sel and sel.room_for(track):
            sel.add(track)
    n_forced = len(sel)
    waiting: list[Track] = []
    chosen: Counter[str] = Counter()  # artists of the tracks chosen after the forced ones

    def balanced(track: Track) -> bool:
        if not constraints.no_artist_repeat or not track.artist_key:
            return True
        return chosen[track.artist_key] + 1 <= (len(sel) - n_forced + 2) // 2

    def take(track: Track) -> None:
        sel.add(track)
        if track.artist_key:
            chosen[track.artist_key] += 1

    rank: dict[int, int] = {}
    for track in ranked:
        rank.setdefault(track.item_id, len(rank))
        if sel.full():
            break
        if sel.blocked(track):
            continue
        if not balanced(track):
            waiting.append(track)
            continue
        take(track)
        progress = True
        while progress and waiting and not sel.full():
            progress = False
            for queued in list(waiting):
                if sel.blocked(queued):
                    waiting.remove(queued)
                elif balanced(queued):
                    waiting.remove(queued)
                    take(queued)
                    progress = True
                    break
    return sel.tracks[:n_forced] + sorted(sel.tracks[n_forced:], key=lambda t: rank[t.item_id])


def enforce(tracks: Sequence[Track], constraints: Constraints, *, exempt: Iterable[int] = ()) -> list[Track]:
    """Drop, in play order, every track that breaks a constraint (a safety net for any strategy).

    ``exempt`` ids (the seed with ``include_seed``) skip the caps and the repeat rule.
    """
    skip_caps = set(int(i) for i in exempt)
    sel = Selection(constraints)
    for track in tracks:
        if track.item_id in sel:
            continue
        if track.item_id in skip_caps:
            if sel.room_for(track):
                sel.add(track)
            continue
        if sel.fits(track):
            sel.add(track)
    return sel.tracks


# -- order ---------------------------------------------------------------------


def _artist_codes(tracks: Sequence[Track]) -> np.ndarray:
    """One integer per artist; each unknown artist gets its own (never a repeat)."""
    codes: dict[str, int] = {}
    out = []
    for n, t in enumerate(tracks):
        out.append(codes.setdefault(t.artist_key, len(codes)) if t.artist_key else -1 - n)
    return np.array(out, dtype=np.int64)


def tour(
    cost_row: Callable[[int], np.ndarray],
    tracks: Sequence[Track],
    *,
    first_costs: np.ndarray | None = None,
    after: Track | None = None,
    no_artist_repeat: bool = True,
    matrix: np.ndarray | None = None,
    two_opt: bool = True,
) -> list[int]:
    """Order tracks greedily by cost, keeping artists apart; returns positions into ``tracks``.

    Parameters
    ----------
    cost_row
        ``cost_row(i)`` -> costs ``(n,)`` from track ``i`` to every track.
    tracks
        The tracks to order.
    first_costs : np.ndarray [shape=(n,)], optional
        Costs of starting with each track (e.g. from the seed's last track); without
        them the tour starts with track 0.
    after
        The track played before the first one (its artist must not open the tour).
    no_artist_repeat
        Keep the same artist apart. The greedy step picks the cheapest track whose
        choice still leaves an order without repeats; when none exists (an artist
        holds more than half the tracks) it takes the cheapest one.
    matrix : np.ndarray [shape=(n, n)], optional
        All costs, symmetric; enables the 2-opt improvement.
    two_opt
        Improve the greedy tour by 2-opt moves that keep the first track and respect
        the repeat rule.
    """
    n = len(tracks)
    if n == 0:
        return []
    artists = _artist_codes(tracks)
    previous_artist: int | None = None
    if after is not None and after.artist_key:
        previous_artist = next(
            (int(a) for a, t in zip(artists, tracks, strict=True) if t.artist_key == after.artist_key), None
        )
    state = _Spacing(artists, previous_artist, no_artist_repeat)
    remaining = state.remaining
    order: list[int] = []
    costs = first_costs if first_costs is not None else None
    while remaining.any():
        lead = state.counts.leaders()
        if costs is None:  # no start costs: open with track 0 (the strategy's best) if it can
            ranked = np.flatnonzero(remaining)
        else:
            masked = np.where(remaining, costs, np.inf)
            best = int(np.argmin(masked))
            ranked = np.array([best]) if state.feasible(best, lead) else np.argsort(masked, kind="stable")
        pick = next((int(i) for i in ranked if remaining[i] and state.feasible(int(i), lead)), int(ranked[0]))
        order.append(pick)
        state.take(pick)
        costs = cost_row(pick)
    if two_opt and matrix is not None and n > 3:
        order = _two_opt(order, matrix, artists, no_artist_repeat=no_artist_repeat)
    return order


class _Spacing:
    """What the greedy tour still has to place, and whether a pick keeps artists apart."""

    def __init__(self, artists: np.ndarray, previous_artist: int | None, no_artist_repeat: bool) -> None:
        self.artists = artists
        self.left = Counter(artists.tolist())
        self.remaining = np.ones(len(artists), dtype=bool)
        self.previous_artist = previous_artist
        self.no_artist_repeat = no_artist_repeat
        self.counts = _Counts(self.left)

    def feasible(self, i: int, lead: tuple[int, int, int]) -> bool:
        """Whether track ``i`` next still leaves an order without repeats (``lead``: the counts' leaders)."""
        if not self.no_artist_repeat:
            return True
        a = int(self.artists[i])
        if self.previous_artist is not None and a == self.previous_artist and a >= 0:
            return False
        m = int(self.remaining.sum()) - 1  # tracks left after this one
        if m <= 0 or a < 0:
            return m <= 0 or lead[1] <= (m + 1) // 2
        top_artist, top, second = lead
        rest_top = max(top - 1, second) if a == top_artist else top
        # the others must fit apart, and this artist must not need the next slot
        return rest_top <= (m + 1) // 2 and self.left[a] - 1 <= m // 2

    def take(self, pick: int) -> None:
        """Track ``pick`` is placed next."""
        a = int(self.artists[pick])
        self.remaining[pick] = False
        self.left[a] -= 1
        self.counts.decrement(a)
        self.previous_artist = a


class _Counts:
    """Tracks left per known artist, with the leader and runner-up in O(1) as counts fall by one."""

    def __init__(self, left: Counter[int]) -> None:
        self.count = {a: v for a, v in left.items() if a >= 0 and v > 0}
        self.buckets: dict[int, set[int]] = {}
        for a, v in self.count.items():
            self.buckets.setdefault(v, set()).add(a)
        self.top = max(self.buckets, default=0)

    def decrement(self, artist: int) -> None:
        v = self.count.get(artist, 0)
        if v <= 0:
            return
        self.buckets[v].discard(artist)
        self.count[artist] = v - 1
        if v > 1:
            self.buckets.setdefault(v - 1, set()).add(artist)
        while self.top > 0 and not self.buckets.get(self.top):
            self.top -= 1

    def leaders(self) -> tuple[int, int, int]:
        """The artist with most tracks left, its count, and the runner-up's count."""
        if self.top == 0:
            return -1, 0, 0
        lead = self.buckets[self.top]
        artist = min(lead)
        if len(lead) > 1:
            return artist, self.top, self.top
        second = self.top - 1
        while second > 0 and not self.buckets.get(second):
            second -= 1
        return artist, self.top, second


def _two_opt(
    order: list[int], cost: np.ndarray, artists: np.ndarray, *, no_artist_repeat: bool, max_passes: int = 20
) -> list[int]:
    """Reverse segments of an open path while that lowers its cost; the first track stays first."""
    path = np.array(order, dtype=np.int64)
    n = len(path)
    for _ in range(max_passes):
        improved = False
        for i in range(1, n - 1):
            j = np.arange(i + 1, n)  # segment path[i..j] reversed
            before, first, last = path[i - 1], path[i], path[j]
            nxt = np.where(j < n - 1, path[np.minimum(j + 1, n - 1)], -1)
            has_next = nxt >= 0
            old = cost[before, first] + np.where(has_next, cost[last, np.maximum(nxt, 0)], 0.0)
            new = cost[before, last] + np.where(has_next, cost[first, np.maximum(nxt, 0)], 0.0)
            gain = old - new
            if no_artist_repeat:
                ok = artists[before] != artists[last]
                ok &= ~has_next | (artists[first] != artists[np.maximum(nxt, 0)])
                gain = np.where(ok, gain, -np.inf)
            best = int(np.argmax(gain))
            if gain[best] > 1e-9:
                jj = int(j[best])
                path[i : jj + 1] = path[i : jj + 1][::-1].copy()
                improved = True
        if not improved:
            break
    return path.tolist()
