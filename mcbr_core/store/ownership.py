"""Which library a store belongs to, and taking over a store shared by several.

Each library keeps its own store (by default a sidecar beside the library file),
because embeddings are keyed by the library's item ids: two libraries writing one
store overwrite each other's rows. A store records its owner; an older store that
several libraries may have shared (one per config folder) is taken over only when
its rows unambiguously belong to one library.

A catalogue (``mcbr analyze``: files analysed outside beets, keyed by path) is
never a library's store; a library adopts its rows by path (``adopt_by_path``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcbr_core.errors import ConfigError
from mcbr_core.store.embeddings import EmbeddingStore
from mcbr_core.store.mtime import same_mtime

if TYPE_CHECKING:
    from mcbr_core.analysis import Analysis

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
        If the store belongs to another library that still exists, or is a catalogue.
    """
    from mcbr_core.store.catalogue import OWNER_PREFIX

    owner = store.owner()
    if owner == library:
        return
    if owner is not None and owner.startswith(OWNER_PREFIX):
        raise ConfigError(
            f"{store.path} is a catalogue written by `mcbr analyze`, not a library's store; "
            f"adopt its rows with `beet mcbr --adopt {store.path}`"
        )
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
            (matched if row.path is not None and os.fsencode(row.path) == path else mismatched).add(
                row.item_id
            )
        if mismatched:
            return Adoption(0, f"{len(mismatched)} of its rows name other files than this library's items")
        if not matched:
            return Adoption(0, "none of its rows are this library's items")
        copied = store.copy_from(old, matched)
        old.claim(library)
    log.info("took over %d embeddings of %d items from %s", copied, len(matched), legacy)
    return Adoption(copied)


def adopt_by_path(
    catalogue: str | Path,
    files: Mapping[Hashable, tuple[bytes, float | None]],
    *,
    model_id: str,
    feature_version: str,
) -> dict[Hashable, Analysis]:
    """The catalogue's analyses of these files, where a file is unchanged since its analysis.

    A catalogue row is adopted when it records the same path (byte for byte),
    the same mtime (``same_mtime``), and the configured model and feature version.
    The host records each adopted ``Analysis`` exactly as a fresh one (store row
    under its own id and path, tags from its scores and embedding): adoption
    replaces the analysis, not the writes.

    Parameters
    ----------
    catalogue
        The catalogue file (``mcbr analyze ... -o FILE``).
    files
        Key (a beets item id) -> ``(path, mtime)`` of the file now; mtime ``None``
        for a file that is not there.
    model_id, feature_version
        What the host's analysis would use.

    Returns
    -------
    dict
        Key -> ``Analysis`` for the adopted files; the others need analysing.

    Raises
    ------
    ConfigError
        If the file is not a catalogue.
    """
    from mcbr_core.analysis import Analysis
    from mcbr_core.store.catalogue import Catalogue

    with Catalogue(catalogue) as cat:
        entries = cat.lookup((path for path, _ in files.values()), model_id)
    adopted: dict[Hashable, Analysis] = {}
    for key, (path, mtime) in files.items():
        e = entries.get(path)
        if e is None or e.feature_version != feature_version or not same_mtime(e.mtime, mtime):
            continue
        adopted[key] = Analysis(
            path=os.fsdecode(path),
            model_id=e.model_id,
            feature_version=e.feature_version,
            duration=e.duration,
            analysed=e.analysed,
            scores=e.scores,
            embedding=e.embedding,
            timings={},
            coverage=e.coverage,
        )
    log.debug("adopted %d of %d files from the catalogue %s", len(adopted), len(files), catalogue)
    return adopted
