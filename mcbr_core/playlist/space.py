"""The embedding space a playlist strategy searches.

A ``Space`` serves three things by item id: vectors (prepared for the model's
metric), track metadata, and the candidates a playlist may draw from (a host's
restriction query, minus items it cannot find). It loads lazily, so a radio or a
path over a large library reads only the neighbourhoods it visits when an index is
given; modes that need the whole library (cluster, signature) load it once.

Vectors are *prepared* on the way in: unit-normalised for the ``angular`` metric
(and ``dot``, which has no distance of its own), as they are. After that, every
distance is Euclidean: for unit vectors that is Annoy's angular distance
``sqrt(2 - 2 cos)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.playlist.base import Track
from mcbr_core.vectors import centroid, unit

METRICS = ("angular", "euclidean", "dot")

#: ``loader(ids)`` -> ``(ids (N,), vectors (N, D))`` of the items that have one; ``loader(None)``: every item.
VectorLoader = Callable[[Sequence[int] | None], tuple[np.ndarray, np.ndarray]]
#: ``lookup(ids)`` -> ``{id: Track}`` for the ids the host knows.
TrackLookup = Callable[[Sequence[int]], Mapping[int, Track]]


class NearestIndex(Protocol):
    """What a ``Space`` needs of an index backend (``mcbr_core.store.index.IndexBackend`` fits)."""

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` nearest ids ``(n,)`` and distances ``(n,)`` to ``vector`` ``(D,)``."""
        ...


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Vectors ``(N, D)`` ready for Euclidean distances: unit-normalised unless ``metric`` is euclidean."""
    vecs = np.asarray(vectors, dtype=np.float64)
    return vecs if metric == "euclidean" else unit(vecs)


def distances(vectors: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Euclidean distances of prepared ``vectors`` ``(N, D)`` to ``point`` ``(D,)``: ``(N,)``."""
    return np.sqrt(np.maximum(((vectors - point) ** 2).sum(axis=-1), 0.0))


class Space:
    """Prepared embeddings, track metadata and the candidate filter.

    Parameters
    ----------
    loader
        Reads vectors by id, or every vector with ``None`` (``EmbeddingStore.vectors``
        bound to a model).
    tracks
        Looks up track metadata; an id it does not return is never a candidate.
    metric
        The embedding's metric: ``angular``, ``euclidean`` or ``dot``.
    allowed
        Ids a playlist may draw from (``None``: every item with a track).
    index
        Optional nearest-neighbour index over the same vectors; without one,
        ``nearest`` searches every vector exactly.
    """

    def __init__(
        self,
        *,
        loader: VectorLoader,
        tracks: TrackLookup,
        metric: str = "angular",
        allowed: Iterable[int] | None = None,
        index: NearestIndex | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.metric = metric
        self._loader = loader
        self._lookup = tracks
        self._allowed = None if allowed is None else frozenset(int(i) for i in allowed)
        self._index = index
        self._vectors: dict[int, np.ndarray] = {}
        self._tracks: dict[int, Track | None] = {}
        self._library: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        tracks: Mapping[int, Track] | Iterable[Track] | None = None,
        *,
        metric: str = "angular",
        allowed: Iterable[int] | None = None,
    ) -> Space:
        """A space in memory: ``ids`` ``(N,)``, ``vectors`` ``(N, D)``, tracks by id (default: bare ones)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vecs = np.asarray(vectors, dtype=np.float64).reshape(len(ids), -1)  # (N, D)
        if len(set(ids.tolist())) != len(ids):
            raise ValueError("item ids must be unique")
        if tracks is None:
            by_id: dict[int, Track] = {int(i): Track(int(i)) for i in ids}
        elif isinstance(tracks, Mapping):
            by_id = {int(k): v for k, v in tracks.items()}
        else:
            by_id = {t.item_id: t for t in tracks}
        pos = {int(i): n for n, i in enumerate(ids)}

        def loader(wanted: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
            if wanted is None:
                return ids, vecs
            rows = sorted({pos[int(i)] for i in wanted if int(i) in pos})
            return ids[rows], vecs[rows]

        return cls(
            loader=loader,
            tracks=lambda wanted: {int(i): by_id[int(i)] for i in wanted if int(i) in by_id},
            metric=metric,
            allowed=allowed,
        )

    # -- vectors ---------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Dimension of the vectors (0 for an empty space)."""
        if self._vectors:
            return int(next(iter(self._vectors.values())).shape[0])
        ids, vecs = self.library()
        return int(vecs.shape[1]) if len(ids) else 0

    def library(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's id ``(N,)`` and prepared vector ``(N, D)``, candidate or not (read once)."""
        if self._library is None:
            ids, vecs = self._loader(None)
            ids = np.asarray(ids, dtype=np.int64)
            vecs = prepare(vecs, self.metric) if len(ids) else np.zeros((0, 0))
            self._library = (ids, vecs)
            self._vectors.update(zip(ids.tolist(), vecs, strict=True))
        return self._library

    def vectors(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Prepared vectors of the ids that have one, in the order asked: ids ``(n,)``, vectors ``(n, D)``."""
        wanted = [int(i) for i in ids]
        missing = [i for i in wanted if i not in self._vectors]
        if missing and self._library is None:
            got_ids, got = self._loader(missing)
            if len(got_ids):
                self._vectors.update(
                    zip(np.asarray(got_ids).tolist(), prepare(got, self.metric), strict=True)
                )
        found = [i for i in dict.fromkeys(wanted) if i in self._vectors]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim if self._vectors else 0))
        return np.asarray(found, dtype=np.int64), np.stack([self._vectors[i] for i in found])

    def centroid(self, ids: Iterable[int]) -> np.ndarray | None:
        """Mean ``(D,)`` of the items' prepared vectors (on the unit sphere unless euclidean), or ``None``."""
        _, vecs = self.vectors(ids)
        return centroid(vecs, "euclidean" if self.metric == "euclidean" else "angular")

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The library's mean ``(D,)`` and standard deviation ``(D,)`` per dimension (floored at 1e-9)."""
        _, vecs = self.library()
        return vecs.mean(axis=0), np.maximum(vecs.std(axis=0), 1e-9)

    # -- tracks and candidates -------------------------------------------------

    def tracks(self, ids: Iterable[int]) -> dict[int, Track]:
        """Metadata of the ids the host knows (others are absent)."""
        wanted = [int(i) for i in ids]
        missing = [i for i in dict.fromkeys(wanted) if i not in self._tracks]
        if missing:
            found = self._lookup(missing)
            for i in missing:
                self._tracks[i] = found.get(i)
        return {i: t for i in wanted if (t := self._tracks[i]) is not None}

    def track(self, item_id: int) -> Track | None:
        """Metadata of one item, or ``None``."""
        return self.tracks([item_id]).get(int(item_id))

    def candidate_ids(self, ids: Iterable[int]) -> list[int]:
        """The ids (in order) a playlist may draw from: allowed and known."""
        ids = [int(i) for i in ids]
        if self._allowed is not None:
            ids = [i for i in ids if i in self._allowed]
        known = self.tracks(ids)
        return [i for i in ids if i in known]

    def candidates(self, *, exclude: Iterable[int] = ()) -> np.ndarray:
        """Every candidate with a vector, as ids ``(n,)`` sorted by id."""
        skip = set(int(i) for i in exclude)
        ids, _ = self.library()
        return np.asarray(self.candidate_ids(i for i in ids.tolist() if i not in skip), dtype=np.int64)

    def nearest(self, point: np.ndarray, k: int, *, exclude: Iterable[int] = ()) -> np.ndarray:
        """The ``k`` candidates nearest to a prepared ``point`` ``(D,)``, nearest first: ids ``(<=k,)``."""
        skip = set(int(i) for i in exclude)
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if self._index is None or self._library is not None:
            ids, vecs = self.library()
            if not len(ids):
                return np.zeros(0, dtype=np.int64)
            ranked = [
                i for i in ids[np.argsort(distances(vecs, point), kind="stable")].tolist() if i not in skip
            ]
            out: list[int] = []
            step = max(4 * k, 256)  # look metadata up in chunks: a host's lookup may be a query
            for start in range(0, len(ranked), step):
                out += self.candidate_ids(ranked[start : start + step])
                if len(out) >= k:
                    break
            return np.asarray(out[:k], dtype=np.int64)
        n = k + len(skip) + 10
        while True:
            found, _ = self._index.query(np.asarray(point, dtype=np.float32), n)
            ranked = [i for i in np.asarray(found).tolist() if i not in skip]
            out = self.candidate_ids(ranked)
            if len(out) >= k or len(found) < n:
                break
            n *= 4
        # the index's own distances may be approximate: re-rank exactly
        got, vecs = self.vectors(out)
        order = np.argsort(distances(vecs, point), kind="stable")
        return got[order][:k]
