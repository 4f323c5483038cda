"""Consistency check of the store and index against the library (``beet mcbr --check``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcbr_core.errors import IndexMismatchError
from mcbr_core.similarity import Neighbours
from mcbr_core.store.embeddings import EmbeddingStore
from mcbr_core.store.mtime import same_mtime


@dataclass
class CheckReport:
    """What ``check`` found.

    Attributes
    ----------
    missing
        Library items with no embedding of the configured model (and not marked failed).
    changed
        Items whose file changed (mtime) since their embedding was computed.
    orphans
        Embeddings of items that are no longer in the library.
    stale
        ``(item_id, model_id)`` rows of other models or other feature versions.
    absent
        Items whose file is missing (only the user can repair these).
    index
        ``"fresh"``, ``"stale"``, ``"missing"``, ``"empty"`` or a mismatch message.
    """

    missing: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    stale: list[tuple[int, str]] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)
    index: str = "missing"

    @property
    def ok(self) -> bool:
        """Whether nothing needs fixing that a repair can fix (missing files need the user)."""
        return not (self.missing or self.changed or self.orphans or self.stale) and self.index in (
            "fresh",
            "empty",
        )

    def findings(self) -> list[tuple[str, list[int]]]:
        """A human summary, one finding a line, each with the library items it names."""
        return [
            (f"items without an embedding: {len(self.missing)}", self.missing),
            (f"items changed since analysis: {len(self.changed)}", self.changed),
            (f"items whose file is missing: {len(self.absent)}", self.absent),
            (f"orphaned embeddings (item gone): {len(self.orphans)}", []),
            (
                f"embeddings of other models or feature versions: {len(self.stale)}",
                sorted({i for i, _ in self.stale}),
            ),
            (f"index: {self.index}", []),
        ]


def check(
    store: EmbeddingStore,
    items: Mapping[int, float | None],
    *,
    model_id: str,
    feature_version: str,
    neighbours: Neighbours,
    failed: frozenset[int] = frozenset(),
) -> CheckReport:
    """Compare the store and index with the library.

    Parameters
    ----------
    store
        The embedding store.
    items
        Library item id -> current file mtime (``None`` if the file is missing).
    model_id, feature_version
        The configured model.
    neighbours
        The index manager of the configured model.
    failed
        Items marked as failed whose file has not changed since (not counted as missing).
    """
    report = CheckReport()
    have: dict[int, float | None] = {}
    for row in store.rows():
        if row.item_id not in items:
            report.orphans.append(row.item_id)
        elif row.model_id != model_id or row.feature_version != feature_version:
            report.stale.append((row.item_id, row.model_id))
        else:
            have[row.item_id] = row.mtime
    report.orphans = sorted(set(report.orphans))
    for item_id, mtime in items.items():
        if mtime is None:
            report.absent.append(item_id)
        elif item_id not in have:
            if item_id not in failed:
                report.missing.append(item_id)
        elif not same_mtime(have[item_id], mtime):
            report.changed.append(item_id)
    report.index = index_state(store, neighbours, model_id)
    return report


def index_state(store: EmbeddingStore, neighbours: Neighbours, model_id: str) -> str:
    """Describe the on-disk index of ``model_id``."""
    if store.count(model_id) == 0:
        return "empty"
    try:
        return "stale" if neighbours.is_stale() else "fresh"
    except IndexMismatchError as exc:
        return f"mismatch ({exc})"
