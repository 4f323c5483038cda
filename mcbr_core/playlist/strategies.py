"""Built-in playlist strategies (registered through ``register_playlist_strategies``).

- ``radio``: from the seed, walk to near neighbours; each step is priced by its
  distance to the seed's centroid and its transition from the previous track.
- ``path``: a smooth path from one query to another, along the arc between their
  centroids; every step moves forward (its projection on the A -> B direction grows).
- ``cluster``: seeded k-means over the library (or a query's tracks); one playlist
  per cluster, named from its dominant mood and genre.
- ``signature``: Tower & Vegner's playlist signature: the few dimensions the seed's
  tracks share, and the tracks nearest to the seed in those dimensions only.

Every strategy takes its options as a frozen dataclass; unknown keys are an error.
``path`` lives in ``mcbr_core.playlist.path``; what the strategies share in
``mcbr_core.playlist.requests``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.hookspecs import Register, hookimpl
from mcbr_core.playlist.base import Playlist, PlaylistRequest, Track
from mcbr_core.playlist.constraints import Selection, Transitions, select
from mcbr_core.playlist.kmeans import kmeans
from mcbr_core.playlist.naming import name_clusters
from mcbr_core.playlist.path import Path, PathOptions, arc, progress
from mcbr_core.playlist.requests import all_seed_ids, mode_options, pool_of, seed_label, seed_of
from mcbr_core.playlist.space import distances

log = logging.getLogger(__name__)

__all__ = [
    "Cluster",
    "ClusterOptions",
    "Path",
    "PathOptions",
    "Radio",
    "RadioOptions",
    "Signature",
    "SignatureOptions",
    "SignatureStrategy",
    "arc",
    "progress",
    "register_playlist_strategies",
    "signature",
]


# -- radio ----------------------------------------------------------------------


@dataclass(frozen=True)
class RadioOptions:
    """Options of ``radio``.

    Attributes
    ----------
    seed_weight
        Weight of a step's distance to the seed's centroid (keeps the radio on topic).
    previous_weight
        Weight of the transition from the previous track (keeps it smooth).
    pool
        Candidates considered: the tracks nearest to the seed.
    """

    seed_weight: float = 1.0
    previous_weight: float = 1.0
    pool: int = 1000

    def __post_init__(self) -> None:
        if self.seed_weight < 0 or self.previous_weight < 0 or self.seed_weight + self.previous_weight <= 0:
            raise ConfigError("mcbr.playlist.radio: weights must be >= 0 and not both 0")
        if self.pool < 1:
            raise ConfigError("mcbr.playlist.radio.pool: must be >= 1")


class Radio:
    """Start at the query's tracks and walk to near neighbours."""

    name = "radio"
    queries = (1, 1)
    seeded = True
    summary = "start at the query's tracks and walk to near neighbours"
    defaults: Mapping[str, Any] = asdict(RadioOptions())

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        opts: RadioOptions = mode_options(RadioOptions, request.options, self.name)
        c = request.constraints
        space = request.space
        seed_ids, seed_tracks, seed_vecs = seed_of(request, 0, self.name)
        centre = space.centroid(seed_ids)
        assert centre is not None
        sel = Selection(c)
        if c.include_seed:
            for track in seed_tracks:
                if track.item_id not in sel and sel.room_for(track):
                    sel.add(track)
        if len(sel):
            last = seed_ids.index(sel.tracks[-1].item_id)
            prev_vec, prev_track = seed_vecs[last], seed_tracks[last]
        else:
            nearest = int(distances(seed_vecs, centre).argmin())
            prev_vec, prev_track = seed_vecs[nearest], seed_tracks[nearest]
        ids, tracks, vecs = pool_of(
            space, space.nearest(centre, opts.pool, exclude=all_seed_ids(request)).tolist()
        )
        scores: dict[int, float] = {}
        if ids:
            to_seed = distances(vecs, centre)  # (n,)
            transitions = Transitions(vecs, tracks, c)
            gone = np.zeros(len(ids), dtype=bool)
            while not sel.full():
                cost = opts.seed_weight * to_seed + opts.previous_weight * transitions.from_point(
                    prev_vec, prev_track
                )
                pick = None
                for i in np.argsort(np.where(gone, np.inf, cost), kind="stable"):
                    if gone[i]:
                        break
                    if sel.blocked(tracks[i]):
                        gone[i] = True  # caps and duplicates only tighten
                    elif not sel.repeats(tracks[i]):
                        pick = int(i)
                        break
                if pick is None:
                    break
                sel.add(tracks[pick])
                gone[pick] = True
                scores[ids[pick]] = float(to_seed[pick])
                prev_vec, prev_track = vecs[pick], tracks[pick]
        name = f"Radio: {seed_label(request, 0, seed_tracks)}"
        return [Playlist(name, tuple(sel.ids), ordered=True, scores=scores)]


# -- cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterOptions:
    """Options of ``cluster``.

    Attributes
    ----------
    clusters
        Number of playlists (fewer if there are fewer distinct tracks).
    iterations, restarts
        k-means effort (the start is seeded by the ``seed`` setting).
    """

    clusters: int = 8
    iterations: int = 100
    restarts: int = 4

    def __post_init__(self) -> None:
        if self.clusters < 1 or self.iterations < 1 or self.restarts < 1:
            raise ConfigError("mcbr.playlist.cluster: clusters, iterations and restarts must be >= 1")


class Cluster:
    """Split the library (or a query's tracks) into playlists of similar tracks."""

    name = "cluster"
    queries = (0, 1)
    seeded = False
    summary = "split the library (or the query's tracks) into playlists of similar tracks"
    defaults: Mapping[str, Any] = asdict(ClusterOptions())

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        opts: ClusterOptions = mode_options(ClusterOptions, request.options, self.name)
        c = request.constraints
        space = request.space
        if request.seeds and request.seeds[0]:
            ids, tracks, vecs = pool_of(space, list(request.seeds[0]))
        else:
            ids, tracks, vecs = pool_of(space, space.candidates().tolist())
        if not ids:
            raise McbrError("cluster: no tracks with an embedding to cluster")
        k = min(opts.clusters, len(ids))
        labels, centres = kmeans(
            vecs,
            k,
            seed=c.random_seed,
            spherical=space.metric != "euclidean",
            iterations=opts.iterations,
            restarts=opts.restarts,
        )
        found = [(j, np.flatnonzero(labels == j)) for j in range(k)]
        found = [(j, g) for j, g in found if len(g)]  # identical tracks may leave a cluster empty
        groups = [g for _, g in found]
        centres = centres[[j for j, _ in found]]
        names = name_clusters([[tracks[i] for i in g] for g in groups])
        log.debug(
            "cluster: %d tracks in %d clusters of %s",
            len(ids),
            len(groups),
            ", ".join(str(len(g)) for g in groups),
        )
        playlists = []
        for j, members in enumerate(groups):
            to_centre = distances(vecs[members], centres[j])
            ranked = members[np.argsort(to_centre, kind="stable")]
            chosen = select([tracks[i] for i in ranked], c)
            scores = {ids[i]: float(d) for i, d in zip(members.tolist(), to_centre.tolist(), strict=True)}
            playlists.append(
                Playlist(
                    names[j],
                    tuple(t.item_id for t in chosen),
                    scores={t.item_id: scores[t.item_id] for t in chosen},
                )
            )
        return sorted(playlists, key=lambda p: -len(p.item_ids))


# -- signature ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureOptions:
    """Options of ``signature``.

    Attributes
    ----------
    dims
        Dimensions in the signature ("a few": capped at the embedding's size).
    spread_floor
        The seed's spread in a dimension, relative to the library's, is floored at
        this before it divides: it keeps one-track seeds (zero spread) sane and
        widens the match where the seed is very tight.
    """

    dims: int = 8
    spread_floor: float = 0.25

    def __post_init__(self) -> None:
        if self.dims < 1:
            raise ConfigError("mcbr.playlist.signature.dims: must be >= 1")
        if not self.spread_floor > 0:
            raise ConfigError("mcbr.playlist.signature.spread_floor: must be > 0")


@dataclass(frozen=True)
class Signature:
    """Which dimensions a set of tracks shares, and where (library z-scores)."""

    dims: np.ndarray  # (k,) dimension indices, strongest first
    centre: np.ndarray  # (k,) the seed's mean in those dimensions
    scale: np.ndarray  # (k,) allowed spread: library std x max(seed's relative spread, floor)
    strength: np.ndarray  # (k,) |z| / relative spread, the ranking key

    def distance(self, vectors: np.ndarray) -> np.ndarray:
        """Root-mean-square standardised distance ``(N,)`` to the seed in the signature's dimensions."""
        z = (np.asarray(vectors)[:, self.dims] - self.centre) / self.scale  # (N, k)
        return np.sqrt((z**2).mean(axis=1))


def signature(
    seed: np.ndarray, mean: np.ndarray, std: np.ndarray, *, dims: int, spread_floor: float = 0.25
) -> Signature:
    """The playlist signature of seed vectors ``(s, D)`` against the library's ``mean`` and ``std`` ``(D,)``.

    A dimension belongs to the signature when the seed's tracks sit far from the
    library's mean in it (a large ``|z|`` of their mean) and close to each other (a
    small spread relative to the library's): strength ``|z| / max(spread, floor)``.
    """
    seed = np.asarray(seed, dtype=np.float64)
    centre = seed.mean(axis=0)
    z = (centre - mean) / std  # (D,)
    spread = np.maximum(seed.std(axis=0) / std, spread_floor)  # (D,)
    strength = np.abs(z) / spread
    top = np.argsort(-strength, kind="stable")[: min(dims, seed.shape[1])]
    return Signature(top, centre[top], std[top] * spread[top], strength[top])


class SignatureStrategy:
    """Extend a playlist or an album by the few dimensions its tracks share."""

    name = "signature"
    queries = (1, 1)
    seeded = True
    summary = "extend the query's tracks (a playlist, an album) by the few dimensions they share"
    defaults: Mapping[str, Any] = asdict(SignatureOptions())

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        opts: SignatureOptions = mode_options(SignatureOptions, request.options, self.name)
        c = request.constraints
        space = request.space
        seed_ids, seed_tracks, seed_vecs = seed_of(request, 0, self.name)
        mean, std = space.moments()
        sig = signature(seed_vecs, mean, std, dims=opts.dims, spread_floor=opts.spread_floor)
        log.debug(
            "signature of %s: dimensions %s (strength %s)",
            seed_label(request, 0, seed_tracks),
            sig.dims.tolist(),
            ", ".join(f"{s:.1f}" for s in sig.strength),
        )
        ids, tracks, vecs = pool_of(space, space.candidates(exclude=all_seed_ids(request)).tolist())
        scores: dict[int, float] = {}
        chosen: list[Track] = []
        forced = seed_tracks if c.include_seed else []
        if ids:
            dist = sig.distance(vecs)
            ranked = np.argsort(dist, kind="stable")
            chosen = select([tracks[i] for i in ranked], c, forced=forced)
            scores = {ids[i]: float(dist[i]) for i in ranked.tolist()}
        else:
            chosen = select([], c, forced=forced)
        n_seed = sum(1 for t in chosen if t.item_id in set(seed_ids))
        ids_out = tuple(t.item_id for t in chosen)
        return [
            Playlist(
                f"Signature: {seed_label(request, 0, seed_tracks)}",
                ids_out,
                scores={i: scores[i] for i in ids_out if i in scores},
                prefix=n_seed,
                after=seed_ids[-1],
            )
        ]


@hookimpl
def register_playlist_strategies(register: Register) -> None:
    """Register the built-in strategies."""
    register("radio", Radio)
    register("path", Path)
    register("cluster", Cluster)
    register("signature", SignatureStrategy)
