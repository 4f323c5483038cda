"""Similar-item search: keeps the index fresh and answers queries.

A query is a set of items (one track, an album, an artist's tracks). Its vector
is the centroid of the items' unit-normalised embeddings, so a many-track query
asks for what the tracks share; the query's own items are never returned.
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Neighbour:
    """One result: an item (or a group key) and its distance to the query."""

    key: Hashable
    distance: float


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
            path=index_path(self.folder, self.model_id), dim=dim, metric=self.metric, model_id=self.model_id, options=options
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
                raise McbrError(f"{index_path(self.folder, self.model_id)}: index unreadable right after building it")
        self._index = index
        return index

    def query_vector(self, item_ids: Iterable[int]) -> np.ndarray | None:
        """Centroid ``(D,)`` of the items' unit-normalised embeddings, or ``None`` if none has one."""
        _, vecs = self.store.vectors(self.model_id, item_ids)
        if len(vecs) == 0:
            return None
        if self.metric == "angular":
            vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs.mean(axis=0)

    def similar(
        self,
        item_ids: Sequence[int],
        n: int,
        *,
        group: Callable[[int], Hashable] | None = None,
        exclude_groups: Iterable[Hashable] = (),
        allowed: Callable[[int], bool] | None = None,
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

        Returns
        -------
        list[Neighbour]
            Nearest first.
        """
        index = self.index()
        query = self.query_vector(item_ids)
        if index is None or query is None or n <= 0:
            return []
        exclude = set(int(i) for i in item_ids)
        skip_groups = set(exclude_groups)
        total = index.meta.n_items if index.meta else 0
        k = min(total, max(4 * n, n + len(exclude) + 10) * (8 if group else 1))
        while True:
            ids, dist = index.query(query, k)
            results: dict[Hashable, float] = {}
            for item_id, d in zip(ids.tolist(), dist.tolist(), strict=True):
                if item_id in exclude or (allowed is not None and not allowed(item_id)):
                    continue
                key = group(item_id) if group else item_id
                if key is None or key in skip_groups or key in results:
                    continue
                results[key] = d
                if len(results) >= n:
                    break
            if len(results) >= n or k >= total:
                return [Neighbour(key, d) for key, d in results.items()]
            k = min(total, k * 4)
