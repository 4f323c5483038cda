"""The ``path`` playlist strategy: a smooth path from one query's tracks to another's.

The path follows the arc between the two queries' centroids; every step moves
forward (its projection on the A -> B direction grows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.playlist.base import Constraints, Playlist, PlaylistRequest, Track
from mcbr_core.playlist.constraints import Selection, Transitions
from mcbr_core.playlist.requests import all_seed_ids, mode_options, pool_of, seed_label, seed_of
from mcbr_core.playlist.space import distances, prepare

__all__ = ["Path", "PathOptions", "arc", "progress"]


@dataclass(frozen=True)
class PathOptions:
    """Options of ``path``.

    Attributes
    ----------
    previous_weight
        Weight of the transition from the previous track, beside the distance to
        the step's point on the arc.
    pool
        Candidates considered, shared out over the steps.
    steps
        Steps of a path when neither a count nor a duration limits it.
    """

    previous_weight: float = 0.5
    pool: int = 1000
    steps: int = 25

    def __post_init__(self) -> None:
        if self.previous_weight < 0:
            raise ConfigError("mcbr.playlist.path.previous_weight: must be >= 0")
        if self.pool < 1 or self.steps < 1:
            raise ConfigError("mcbr.playlist.path: pool and steps must be >= 1")


def arc(a: np.ndarray, b: np.ndarray, t: np.ndarray, *, spherical: bool) -> np.ndarray:
    """Points ``(K, D)`` at fractions ``t`` ``(K,)`` of the way from ``a`` to ``b`` (slerp on the sphere)."""
    t = np.asarray(t, dtype=np.float64)[:, None]  # (K, 1)
    if not spherical:
        return (1.0 - t) * a + t * b
    omega = math.acos(float(np.clip(a @ b, -1.0, 1.0)))
    if omega < 1e-6:
        return prepare((1.0 - t) * a + t * b, "angular")
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)


def progress(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Projection ``(N,)`` of prepared vectors on the A -> B direction: 0 at ``a``, 1 at ``b``."""
    u = b - a
    return (np.asarray(vectors) - a) @ u / float(u @ u)


class Path:
    """A smooth path from one query's tracks to another's."""

    name = "path"
    queries = (2, 2)
    seeded = True
    summary = "a smooth path from the first query's tracks to the second's"
    defaults: Mapping[str, Any] = asdict(PathOptions())

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        opts: PathOptions = mode_options(PathOptions, request.options, self.name)
        c = request.constraints
        space = request.space
        a_ids, a_tracks, a_vecs = seed_of(request, 0, self.name)
        b_ids, b_tracks, b_vecs = seed_of(request, 1, self.name)
        a, b = space.centroid(a_ids), space.centroid(b_ids)
        assert a is not None and b is not None
        if float(np.linalg.norm(b - a)) < 1e-9:
            raise McbrError("path: the two queries sound the same (their centroids coincide)")
        spherical = space.metric != "euclidean"
        # seeds sit at their ends, in the order of their own progress
        a_order = np.argsort(progress(a_vecs, a, b), kind="stable")
        b_order = np.argsort(progress(b_vecs, a, b), kind="stable")
        head = [a_tracks[i] for i in a_order] if c.include_seed else []
        tail = [b_tracks[i] for i in b_order] if c.include_seed else []
        start = float(progress(a_vecs[a_order[-1:]], a, b)[0]) if head else 0.0
        end = float(progress(b_vecs[b_order[:1]], a, b)[0]) if tail else 1.0
        prev0 = (
            (a_vecs[a_order[-1]], a_tracks[a_order[-1]])
            if head
            else (a, a_tracks[int(distances(a_vecs, a).argmin())])
        )
        budget = None if c.duration is None else c.duration - sum(t.duration for t in head + tail)
        if c.count is not None:
            steps = max(c.count - len(head) - len(tail), 0)
        else:
            steps = opts.steps
        # candidates: the neighbourhoods of points along the arc, shared out from the pool
        n_points = max(16, steps)
        guide = arc(a, b, np.linspace(0.0, 1.0, n_points + 2)[1:-1], spherical=spherical)  # (P, D)
        per_point = max(10, math.ceil(opts.pool / n_points))
        exclude = all_seed_ids(request)
        wanted: dict[int, None] = {}
        for point in guide:
            wanted.update(dict.fromkeys(space.nearest(point, per_point, exclude=exclude).tolist()))
        ids, tracks, vecs = pool_of(space, list(wanted))
        where = progress(vecs, a, b) if ids else np.zeros(0)  # (n,)
        inside = (where > start) & (where < end)
        if c.count is None and budget is not None and inside.any():
            mean = float(np.mean([tracks[i].duration for i in np.flatnonzero(inside)]))
            steps = max(1, int(budget // mean)) if mean > 0 else opts.steps
        walk = _PathWalk(c, opts, ids, tracks, vecs, where, a, b, spherical, prev0, bool(head))
        picked, scores, over_time = walk.run(steps, start, end, head, tail, budget)
        while over_time and steps > 0:  # too long for the time: fewer, wider steps
            steps = min(steps - 1, len(picked) - 1)
            picked, scores, over_time = walk.run(steps, start, end, head, tail, budget)
        tracks_out = head + picked + tail
        if c.count is not None:
            tracks_out = tracks_out[: c.count]
        a_label, b_label = seed_label(request, 0, a_tracks), seed_label(request, 1, b_tracks)
        return [
            Playlist(
                f"Path: {a_label} to {b_label}",
                tuple(t.item_id for t in tracks_out),
                ordered=True,
                scores=scores,
            )
        ]


class _PathWalk:
    """The candidates along the arc, and the best monotone walk through them in a number of steps.

    The walk is a dynamic programme over the candidates sorted by progress: step
    ``k`` of ``K`` aims at the arc's point ``k / (K + 1)``; a track may follow
    another only further along (and, with ``no_artist_repeat``, by another artist).
    It fills as many steps as it can, then minimises the distances to the steps'
    points plus ``previous_weight`` times the transition costs. Caps that span the
    whole playlist (per artist, per album, the same song twice) are met by banning
    the offending picks and solving again.
    """

    #: Cost of a step left empty: more than any walk could gain by skipping one.
    SKIP = 1e3

    def __init__(
        self,
        constraints: Constraints,
        opts: PathOptions,
        ids: list[int],
        tracks: list[Track],
        vecs: np.ndarray,
        where: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        spherical: bool,
        prev0: tuple[np.ndarray, Track],
        seed_in_playlist: bool,
    ) -> None:
        self.c = constraints
        self.opts = opts
        self.ids, self.tracks, self.vecs, self.where = ids, tracks, vecs, where
        self.a, self.b, self.spherical = a, b, spherical
        self.prev0 = prev0
        self.seed_in_playlist = seed_in_playlist
        if ids:
            transitions = Transitions(vecs, tracks, constraints)
            self.matrix = transitions.matrix()  # (n, n)
            self.from_start = transitions.from_point(*prev0)  # (n,)
        codes: dict[str, int] = {}
        self.artists = np.array(
            [
                codes.setdefault(t.artist_key, len(codes)) if t.artist_key else -1 - n
                for n, t in enumerate(tracks)
            ],
            dtype=np.int64,
        )
        self.codes = codes

    def _solve(self, steps: int, nodes: np.ndarray, end_artist: int | None) -> list[tuple[int, int]]:
        """The best walk as ``(step, candidate)`` pairs, over candidates ``nodes`` sorted by progress."""
        n = len(nodes)
        points = arc(
            self.a, self.b, np.linspace(0.0, 1.0, steps + 2)[1:-1], spherical=self.spherical
        )  # (K, D)
        vecs = self.vecs[nodes]
        sq = (vecs**2).sum(axis=1)[None, :] + (points**2).sum(axis=1)[:, None] - 2.0 * points @ vecs.T
        to_point = np.sqrt(np.maximum(sq, 0.0))  # (K, n)
        w = self.opts.previous_weight
        step_cost = np.vstack(
            [w * self.from_start[nodes], w * self.matrix[np.ix_(nodes, nodes)]]
        )  # (n + 1, n)
        artists = self.artists[nodes]
        ok = np.ones((n + 1, n), dtype=bool)
        ok[1:] = np.triu(np.ones((n, n), dtype=bool), k=1)  # further along only (sorted, ties removed)
        ok[1:] &= self.where[nodes][None, :] > self.where[nodes][:, None] + 1e-12
        if self.c.no_artist_repeat:
            ok[1:] &= (artists[:, None] != artists[None, :]) | (artists[:, None] < 0)
            start_artist = self.codes.get(self.prev0[1].artist_key) if self.seed_in_playlist else None
            if start_artist is not None:
                ok[0] &= artists != start_artist
        step_cost = np.where(ok, step_cost, np.inf)
        cost = np.full(n + 1, np.inf)
        cost[0] = 0.0  # node 0: still at the start
        came = np.full((steps, n), -1, dtype=np.int64)  # -1: the step was skipped
        for k in range(steps):
            via = cost[:, None] + step_cost  # (n + 1, n)
            best = via.argmin(axis=0)  # (n,)
            take = to_point[k] + via[best, np.arange(n)]
            skip = cost[1:] + self.SKIP
            took = take < skip
            came[k] = np.where(took, best, -1)
            cost = np.concatenate([[cost[0] + self.SKIP], np.where(took, take, skip)])
        final = cost.copy()
        if end_artist is not None and self.c.no_artist_repeat:
            final[1:][artists == end_artist] = np.inf  # the destination's first track follows
        node = int(final.argmin()) if np.isfinite(final).any() else int(cost.argmin())
        walk: list[tuple[int, int]] = []
        for k in range(steps - 1, -1, -1):
            if node == 0:
                break
            prev = int(came[k, node - 1])
            if prev >= 0:
                walk.append((k, int(nodes[node - 1])))
                node = prev
        return walk[::-1]

    def run(
        self,
        steps: int,
        start: float,
        end: float,
        head: list[Track],
        tail: list[Track],
        budget: float | None,
    ) -> tuple[list[Track], dict[int, float], bool]:
        """Walk ``steps`` points of the arc from progress ``start`` to ``end``; returns the picks, their
        distances to their points, and whether they run over the ``budget`` of seconds."""
        if steps <= 0 or not self.ids:
            return [], {}, False
        c = self.c
        caps = Constraints(
            count=None, max_per_artist=c.max_per_artist, max_per_album=c.max_per_album, no_artist_repeat=False
        )
        end_artist = self.codes.get(tail[0].artist_key) if tail and tail[0].artist_key else None
        banned = np.zeros(len(self.ids), dtype=bool)
        for _ in range(20):
            inside = (self.where > start + 1e-12) & (self.where < end - 1e-12) & ~banned
            nodes = np.flatnonzero(inside)
            nodes = nodes[np.argsort(self.where[nodes], kind="stable")]
            walk = self._solve(steps, nodes, end_artist) if len(nodes) else []
            sel = Selection(caps)
            for track in head:
                sel.add(track)
            for track in tail:
                sel.reserve(track)
            offenders = []
            for _, j in walk:
                if sel.blocked(self.tracks[j]):
                    offenders.append(j)
                else:
                    sel.add(self.tracks[j])
            if not offenders:
                break
            banned[offenders] = True
        dropped = set(offenders)  # still offending after the last solve: left out
        picks = [(k, j) for k, j in walk if j not in dropped]
        points = arc(self.a, self.b, np.linspace(0.0, 1.0, steps + 2)[1:-1], spherical=self.spherical)
        scores = {self.ids[j]: float(np.linalg.norm(self.vecs[j] - points[k])) for k, j in picks}
        chosen = [self.tracks[j] for _, j in picks]
        seconds = sum(t.duration for t in chosen)
        return chosen, scores, budget is not None and seconds > budget + 1e-6
