"""Similar-item search: keeps the index fresh and answers queries.

A query is a set of items (one track, an album, an artist's tracks). Its vector
is the centroid of the items' unit-normalised embeddings, so a many-track query
asks for what the tracks share; the query's own items are never returned.

A library often holds one recording more than once (an mp3 and a flac of one song,
an album track and its compilation copy). Given each item's :class:`Recording`,
a search lists each recording once, at its nearest copy, and never lists a copy of
the query's own recordings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.errors import IndexMismatchError, McbrError
from mcbr_core.plugins import Plugins, get_plugins
from mcbr_core.settings import IndexSettings
from mcbr_core.store.embeddings import EmbeddingStore
from mcbr_core.store.index import IndexBackend
from mcbr_core.vectors import centroid, unit

log = logging.getLogger(__name__)


SAME_RECORDING_DISTANCE = 0.2
"""Angular distance ``sqrt(2 - 2 cos)`` below which two items of one artist and title are one recording.

Measured with msd-musicnn on real clips (docs/commands.md, "Copies of one
recording"): a clip re-encoded to flac, ogg, m4a or mp3, or padded with up to 2 s of
silence, lands 0.0-0.17 from the original (median 0.04, 227 pairs), and 1 dB quieter
0.02-0.11; one artist's other takes or excerpts of a title lie 0.23-0.64 apart, and
of 7140 pairs of different songs the nearest is 0.33. The toy test model puts copies
under 0.005.
"""


@dataclass(frozen=True)
class Neighbour:
    """One result: an item (or a group key) and its distance to the query."""

    key: Hashable
    distance: float


def _normalise(text: str | None) -> str:
    return " ".join(str(text or "").lower().split())


@dataclass(frozen=True)
class Recording:
    """What tells whether two items are copies of one recording (one song in two formats).

    Two items are copies when they share ``id``, or when they share ``name``, their
    embeddings are within ``SAME_RECORDING_DISTANCE`` of each other, and their ids do
    not disagree (two different ids are two recordings, whatever the name).

    Attributes
    ----------
    id
        A key that alone proves the recording, such as a MusicBrainz recording id, or
        ``None`` when unknown.
    name
        A weaker key, such as the normalised ``(artist, title)``, that needs the
        embeddings to agree too (a live take and the studio take share it), or ``None``.
    """

    id: Hashable | None = None
    name: Hashable | None = None

    @classmethod
    def of(
        cls, *, mbid: str | None = None, artist: str | None = None, title: str | None = None
    ) -> Recording | None:
        """The recording of an item from its tags, or ``None`` if they identify nothing.

        Parameters
        ----------
        mbid
            MusicBrainz recording id (beets' ``mb_trackid``); ``""`` counts as unknown.
        artist, title
            Compared without regard to case and runs of whitespace; the name is
            unknown when either is empty.

        Returns
        -------
        Recording or None
        """
        artist_key, title_key = _normalise(artist), _normalise(title)
        name = (artist_key, title_key) if artist_key and title_key else None
        mbid = (mbid or "").strip().lower() or None
        return cls(id=mbid, name=name) if mbid or name else None


class _Copies:
    """The recordings met so far in one search, to spot later copies of them.

    Parameters
    ----------
    recording
        Maps an item id to its recording, or ``None``.
    unit
        Maps an item id to its unit-normalised embedding ``(D,)``, or ``None``.
    within
        Angular distance below which two items of one name are copies.
    """

    def __init__(
        self,
        recording: Callable[[int], Recording | None],
        unit: Callable[[int], np.ndarray | None],
        within: float,
    ) -> None:
        self.recording = recording
        self.unit = unit
        self.within = within
        self.ids: set[Hashable] = set()
        self.names: dict[Hashable, list[tuple[Hashable | None, int]]] = {}

    def copy_of_any(self, item_id: int) -> bool:
        """Whether the item is a copy of a recording already met."""
        rec = self.recording(item_id)
        if rec is None:
            return False
        if rec.id is not None and rec.id in self.ids:
            return True
        if rec.name is None or rec.name not in self.names:
            return False
        vec = None
        for other_id, other_item in self.names[rec.name]:
            if rec.id is not None and other_id is not None:
                continue  # both have an id, and they differ: two recordings of one name
            if vec is None:
                vec = self.unit(item_id)
                if vec is None:
                    return False
            other = self.unit(other_item)
            if other is not None and _angular(vec, other) < self.within:
                return True
        return False

    def add(self, item_id: int) -> None:
        """Remember the item's recording."""
        rec = self.recording(item_id)
        if rec is None:
            return
        if rec.id is not None:
            self.ids.add(rec.id)
        if rec.name is not None:
            self.names.setdefault(rec.name, []).append((rec.id, item_id))


def _angular(a: np.ndarray, b: np.ndarray) -> float:
    """``sqrt(2 - 2 cos)`` of two unit vectors ``(D,)``."""
    return float(np.sqrt(max(2.0 - 2.0 * float(a @ b), 0.0)))


def index_path(folder: Path, model_id: str) -> Path:
    """Where the index of ``model_id`` lives (without suffix)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return folder / f"mcbr-{safe}"


class Neighbours:
    """Nearest neighbours of items, over one model's embeddings.

    Parameters
    ----------
    store
        The embedding store.
    model_id
        Model whose embeddings are searched.
    folder
        Folder for the index files.
    settings
        Index backend and its parameters.
    metric
        Distance of the model's embedding space.
    plugins
        Plugin manager (default: the process-wide one).
    """

    def __init__(
        self,
        store: EmbeddingStore,
        *,
        model_id: str,
        folder: Path,
        settings: IndexSettings,
        metric: str = "angular",
        plugins: Plugins | None = None,
    ) -> None:
        self.store = store
        self.model_id = model_id
        self.folder = Path(folder)
        self.settings = settings
        self.metric = metric
        self.plugins = plugins or get_plugins()
        self._index: IndexBackend | None = None

    def _make(self, dim: int) -> IndexBackend:
        factory = self.plugins.registry("index backend").get(self.settings.backend)
        options: dict[str, Any] = {"n_trees": self.settings.n_trees, "search_k": self.settings.search_k}
        return factory(
            path=index_path(self.folder, self.model_id),
            dim=dim,
            metric=self.metric,
            model_id=self.model_id,
            options=options,
        )

    def is_stale(self) -> bool:
        """Whether the index on disk lags behind the store (or is missing)."""
        dim = self.store.dim(self.model_id)
        if dim is None:
            return False
        index = self._make(dim)
        try:
            meta = index.load()
        except IndexMismatchError:
            return True
        return meta is None or meta.generation != self.store.generation(self.model_id)

    def index(self, *, rebuild: bool = False) -> IndexBackend | None:
        """The loaded index, rebuilt from the store first if stale. ``None`` if the store is empty."""
        if self._index is not None and not rebuild:
            return self._index
        dim = self.store.dim(self.model_id)
        if dim is None:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self._make(dim)
        generation = self.store.generation(self.model_id)
        try:
            meta = index.load()
        except IndexMismatchError as exc:
            log.info("%s", exc)
            meta = None
        if rebuild or meta is None or meta.generation != generation:
            ids, vecs = self.store.vectors(self.model_id)
            log.info("building the %s index of %d items (%s)", self.settings.backend, len(ids), self.model_id)
            index.build(ids, vecs, generation=generation)
            if index.load() is None:
                raise McbrError(
                    f"{index_path(self.folder, self.model_id)}: index unreadable right after building it"
                )
        self._index = index
        return index

    @property
    def loaded(self) -> IndexBackend | None:
        """The index answering queries now, or ``None`` before the first ``index()``."""
        return self._index

    def load(self) -> IndexBackend | None:
        """The index as its files are now, never building: ``None`` if missing, half-written or mismatched.

        A long-running process (``beet mcbr-serve``) loads the files again after
        another process rebuilt them, then swaps them in with ``use``.
        """
        dim = self.store.dim(self.model_id)
        if dim is None:
            return None
        index = self._make(dim)
        try:
            meta = index.load()
        except IndexMismatchError:
            return None
        return index if meta is not None else None

    def use(self, index: IndexBackend) -> None:
        """Answer from ``index`` from now on (queries under way finish on the index they started with)."""
        self._index = index

    def query_vector(self, item_ids: Iterable[int]) -> np.ndarray | None:
        """Centroid ``(D,)`` of the items' unit-normalised embeddings, or ``None`` if none has one."""
        _, vecs = self.store.vectors(self.model_id, item_ids)
        return centroid(vecs, self.metric)

    def similar(
        self,
        item_ids: Sequence[int],
        n: int,
        *,
        group: Callable[[int], Hashable] | None = None,
        exclude_groups: Iterable[Hashable] = (),
        allowed: Callable[[int], bool] | None = None,
        same: Callable[[int], Recording | None] | None = None,
        same_within: float = SAME_RECORDING_DISTANCE,
    ) -> list[Neighbour]:
        """The ``n`` items (or groups) nearest to the query items.

        Parameters
        ----------
        item_ids
            The query's items; they are excluded from the results.
        n
            Number of results.
        group
            Maps an item id to a group key (album id, artist name) to rank groups
            by their nearest item instead of items; ``None`` ranks items.
        exclude_groups
            Group keys never returned (the query's own albums or artists).
        allowed
            Optional filter on candidate item ids.
        same
            Maps an item id to its :class:`Recording` (``None``: unknown) to list each
            recording once: a candidate that is a copy of a nearer candidate, or of one
            of the query's items, is skipped. ``None`` lists every item.
        same_within
            Angular distance ``sqrt(2 - 2 cos)`` between two items' embeddings below
            which a shared ``Recording.name`` makes them copies. It is measured on the
            unit-normalised embeddings, whatever the index metric.

        Returns
        -------
        list[Neighbour]
            Nearest first; still ``n`` of them (if the store has enough) when copies
            are skipped.
        """
        index = self.index()
        query = self.query_vector(item_ids)
        if index is None or query is None or n <= 0:
            return []
        exclude = {int(i) for i in item_ids}
        skip_groups = set(exclude_groups)
        total = index.meta.n_items if index.meta else 0
        k = min(total, max(4 * n, n + len(exclude) + 10) * (8 if group else 1) * (2 if same else 1))
        recording = _cached(same) if same is not None else None
        unit = self._unit_vectors(exclude) if same is not None else None
        while True:
            ids, dist = index.query(query, k)
            results: dict[Hashable, float] = {}
            copies = None
            if recording is not None and unit is not None:
                copies = _Copies(recording, unit, same_within)
                for item_id in exclude:
                    copies.add(item_id)
            for item_id, d in zip(ids.tolist(), dist.tolist(), strict=True):
                if item_id in exclude or (allowed is not None and not allowed(item_id)):
                    continue
                if copies is not None:
                    if copies.copy_of_any(item_id):
                        continue
                    copies.add(item_id)
                key = group(item_id) if group else item_id
                if key is None or key in skip_groups or key in results:
                    continue
                results[key] = d
                if len(results) >= n:
                    break
            if len(results) >= n or k >= total:
                return [Neighbour(key, d) for key, d in results.items()]
            k = min(total, k * 4)

    def _unit_vectors(self, preload: Iterable[int]) -> Callable[[int], np.ndarray | None]:
        """A cached lookup of items' unit-normalised embeddings ``(D,)``, starting with ``preload``'s."""
        cache: dict[int, np.ndarray | None] = {}

        ids, vecs = self.store.vectors(self.model_id, preload)
        for item_id, vec in zip(ids.tolist(), vecs, strict=True):
            cache[item_id] = unit(vec)

        def get(item_id: int) -> np.ndarray | None:
            if item_id not in cache:
                vec = self.store.get(item_id, self.model_id)
                cache[item_id] = None if vec is None else unit(vec)
            return cache[item_id]

        return get


def _cached(fn: Callable[[int], Recording | None]) -> Callable[[int], Recording | None]:
    """``fn`` called at most once per item id."""
    cache: dict[int, Recording | None] = {}

    def get(item_id: int) -> Recording | None:
        if item_id not in cache:
            cache[item_id] = fn(item_id)
        return cache[item_id]

    return get
