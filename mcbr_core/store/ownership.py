"""Which library a store belongs to, and taking over a store shared by several.

Each library keeps its own store (by default a sidecar beside the library file),
because embeddings are keyed by the library's item ids: two libraries writing one
store overwrite each other's rows. A store records its owner; an older store that
several libraries may have shared (one per config folder) is taken over only when
its rows unambiguously belong to one library.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mcbr_core.errors import ConfigError
from mcbr_core.store.embeddings import EmbeddingStore

log = logging.getLogger(__name__)


def library_identity(library: str | Path) -> str:
    """A library's identity: the real path of its database file."""
    return os.path.realpath(library)


def check_owner(store: EmbeddingStore, library: str) -> None:
    """Claim an unclaimed store for ``library``; refuse one that belongs to another library.

    A store whose recorded library file no longer exists (the library was moved)
    is claimed again.

    Raises
    ------
    ConfigError
        If the store belongs to another library that still exists.
    """
    owner = store.owner()
    if owner == library:
        return
    if owner is not None and owner != ":memory:" and os.path.exists(owner):
        raise ConfigError(
            f"the store {store.path} belongs to the library {owner}, not {library}; "
            "give each library its own store (mcbr.store: auto keeps it beside the library file)"
        )
    store.claim(library)


@dataclass(frozen=True)
class Adoption:
    """What ``adopt`` did: rows copied, or why it copied nothing."""

    copied: int
    reason: str = ""


def adopt(legacy: Path, store: EmbeddingStore, items: Mapping[int, bytes], library: str) -> Adoption:
    """Take over the rows of a store shared per config folder, where they are unambiguous.

    The rows are this library's when the legacy store is unclaimed (or claimed by
    this library) and every row of one of the library's item ids records that
    item's path. Only those rows are copied; the legacy store is left in place
    (another library may still read it) and is marked as taken over.

    Parameters
    ----------
    legacy
        The old store file.
    store
        This library's (new, empty) store.
    items
        The library's item ids -> file paths.
    library
        The library's identity (``library_identity``).
    """
    with EmbeddingStore(legacy) as old:
        owner = old.owner()
        if owner is not None and owner != library:
            return Adoption(0, f"it belongs to {owner}")
        matched, mismatched = set(), set()
        for row in old.rows():
            path = items.get(row.item_id)
            if path is None:
                continue  # an item this library does not have: never copied
            (matched if row.path is not None and os.fsencode(row.path) == path else mismatched).add(row.item_id)
        if mismatched:
            return Adoption(0, f"{len(mismatched)} of its rows name other files than this library's items")
        if not matched:
            return Adoption(0, "none of its rows are this library's items")
        copied = store.copy_from(old, matched)
        old.claim(library)
    log.info("took over %d embeddings of %d items from %s", copied, len(matched), legacy)
    return Adoption(copied)
