"""From beets to the playlist core's plain values: queries to seed items, items to ``Track``s.

Shared by ``mcbr-playlist``, ``mcbr-mixes``, ``mcbr-dj`` and ``mcbr-serve``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from beets import ui

if TYPE_CHECKING:
    import numpy as np
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.playlist.base import PlaylistStrategy, Track
    from mcbr_core.store.index import IndexBackend

#: Separates the two queries of ``path`` when a query has several terms.
PATH_SEPARATOR = "to"


def split_queries(terms: Sequence[str], strategy: PlaylistStrategy) -> list[list[str]]:
    """The command line's terms as the strategy's queries (lists of beets query terms).

    One-query modes take every term as one query, as ``beet ls`` does. ``path`` takes
    two: split at a lone ``to``, or, without one, exactly two terms.
    """
    low, high = strategy.queries
    terms = list(terms)
    if high <= 1:
        if low == 1 and not terms:
            raise ui.UserError(
                f"mcbr: {strategy.name} needs a query, e.g. beet mcbr-playlist {strategy.name} artist:Phish"
            )
        return [terms] if terms else []
    if terms.count(PATH_SEPARATOR) == 1 and high == 2:
        cut = terms.index(PATH_SEPARATOR)
        queries = [terms[:cut], terms[cut + 1 :]]
    elif high == 2 and len(terms) == 2:
        queries = [[terms[0]], [terms[1]]]
    else:
        queries = [[t] for t in terms]
    if not low <= len(queries) <= high or any(not q for q in queries):
        raise ui.UserError(
            f"mcbr: {strategy.name} takes two queries: `{strategy.name} QUERY_A QUERY_B`, "
            f"or with several terms `{strategy.name} artist:A year:1970 {PATH_SEPARATOR} artist:B`"
        )
    return queries


def query_items(plugin: McbrPlugin, lib: Library, terms: list[str]) -> list[Item]:
    """Items of one query, in its order; a lone ``.m3u``/``.m3u8`` path reads that playlist's tracks."""
    from mcbr_core.playlist import m3u

    if len(terms) == 1 and m3u.is_playlist(os.path.expanduser(terms[0])):
        from beets.dbcore.query import PathQuery

        path = os.path.expanduser(terms[0])
        _, entries = m3u.read(path)
        items, missing = [], 0
        for entry in entries:
            found = (
                list(lib.items(PathQuery("path", os.fsencode(entry.path))))
                if os.path.isabs(entry.path)
                else []
            )
            items += found[:1]
            missing += not found
        if missing:
            plugin.log.warning(
                "{} of the {} entries of {} are not in the library", missing, len(entries), path
            )
        if not items:
            raise ui.UserError(f"mcbr: no track of {path} is in the library")
        return list({i.id: i for i in items}.values())
    items = list(lib.items(terms))
    if not items:
        raise ui.UserError(f"mcbr: no items match the query {' '.join(terms)!r}")
    return items


def track_of(item: Item, mood_separator: str) -> Track:
    """The plain ``Track`` of a beets item."""
    from mcbr_core.playlist.base import Track
    from mcbr_core.tagging import split_list

    if item.album_id is not None:
        album: Any = item.album_id
    elif item.album:
        album = f"{item.albumartist or item.artist}\x1f{item.album}"  # singletons of one tagged album
    else:
        album = None
    mood = item.get("mood") or ""
    genres = item.get("genres") or []
    return Track(
        item.id,
        artist=item.artist or item.albumartist or "",
        album_id=album,
        duration=float(item.length or 0.0),
        bpm=float(item.bpm) if item.bpm else None,
        key=item.initial_key or None,
        genres=tuple(str(g) for g in genres),
        mood=tuple(split_list(str(mood), mood_separator)),
        path=os.fsdecode(item.path),
        title=item.title or "",
        album=item.album or "",
    )


class KnownItems:
    """Items and tracks by id, fetched in chunks and kept for the output."""

    def __init__(self, lib: Library, mood_separator: str) -> None:
        self.lib = lib
        self.separator = mood_separator
        self.items: dict[int, Item] = {}

    def add(self, items: Sequence[Item]) -> None:
        for item in items:
            self.items[item.id] = item

    def tracks(self, ids: Sequence[int]) -> dict[int, Track]:
        from beets.dbcore.query import InQuery

        wanted = [int(i) for i in ids if int(i) not in self.items]
        for start in range(0, len(wanted), 500):
            self.add(list(self.lib.items(InQuery("id", wanted[start : start + 500]))))
        return {int(i): track_of(self.items[int(i)], self.separator) for i in ids if int(i) in self.items}


class LazyIndex:
    """The neighbour index, loaded (and rebuilt if stale) on the first query only."""

    def __init__(self, plugin: McbrPlugin) -> None:
        self.plugin = plugin
        self._index: IndexBackend | None = None

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        if self._index is None:
            self._index = self.plugin.engine.neighbours.index()
        if self._index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self._index.query(vector, n)
