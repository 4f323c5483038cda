"""A user's own music library, labelled by the user's own genres and moods.

The core never sees beets: the beets plugin (``beet mcbr-train``) turns library
items into plain rows and passes them as ``rows=``. Without rows the loader reads
them from a CSV file (``ROOT`` is that file, or a folder holding ``library.csv``)::

    path,artist,genres,mood[,id,album]
    music/a.flac,Miles Davis,Jazz|Cool Jazz,Calm
    music/b.mp3,Slayer,Metal,Angry; Tense

Multiple genres or moods are separated by ``|`` or ``;``; relative paths start at
the CSV's folder. Tasks: ``genre`` (each item's first genre, single-label),
``genres`` (all, multi-label), ``mood`` and ``moods`` likewise. Labels on fewer than
``min_count`` items are dropped: a label seen once can be neither learned nor tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    TaskSpec,
    finalize,
    read_csv,
    split_multi,
)

LICENCE = "private library: the owner's files; models trained on it are for the owner's own use"


@dataclass(frozen=True)
class LibraryRow:
    """One library item, as the beets plugin hands it over.

    Attributes
    ----------
    path
        The audio file.
    artist
        Track artist (groups the artist-disjoint folds).
    genres, moods
        The user's own labels, most important first.
    id
        Stable id (the beets item id); defaults to the row number.
    album
        Album title, kept for reports.
    """

    path: str | Path
    artist: str | None = None
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    id: str | None = None
    album: str | None = None


def _row(value: LibraryRow | Mapping[str, Any], base: Path | None) -> LibraryRow:
    if isinstance(value, LibraryRow):
        row = value
    else:
        row = LibraryRow(
            path=value["path"],
            artist=value.get("artist") or None,
            genres=split_multi(value.get("genres") or value.get("genre")),
            moods=split_multi(value.get("moods") or value.get("mood")),
            id=str(value["id"]) if value.get("id") not in (None, "") else None,
            album=value.get("album") or None,
        )
    path = Path(row.path).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return LibraryRow(path, row.artist, split_multi(row.genres), split_multi(row.moods), row.id, row.album)


def load_library(
    root: Path | None = None,
    *,
    rows: Iterable[LibraryRow | Mapping[str, Any]] | None = None,
    min_count: int = 2,
) -> Dataset:
    """Load a labelled library from plain rows (or a CSV of them).

    Parameters
    ----------
    root
        A rows CSV, or a folder holding ``library.csv``; ignored when ``rows`` is given.
    rows
        :class:`LibraryRow` objects or mappings with ``path``, ``artist``, ``genres``,
        ``mood`` (and optionally ``id``, ``album``).
    min_count
        Drop labels on fewer items.

    Raises
    ------
    DatasetError
        If there are no rows.
    """
    base: Path | None = None
    if rows is None:
        if root is None:
            raise DatasetError("library: give rows or a CSV file of them")
        csv_path = Path(root) / "library.csv" if Path(root).is_dir() else Path(root)
        base = csv_path.parent
        rows = read_csv(csv_path)
    items = [_row(r, base) for r in rows]
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        cid = item.id or str(i)
        if not Path(item.path).is_file():
            skipped.append((cid, f"no audio file {item.path}"))
            continue
        labels: dict[str, tuple[str, ...]] = {}
        if item.genres:
            labels["genre"], labels["genres"] = item.genres[:1], item.genres
        if item.moods:
            labels["mood"], labels["moods"] = item.moods[:1], item.moods
        clips.append(
            Clip(
                id=cid,
                path=Path(item.path),
                artist=item.artist,
                labels=labels,
                extra={"album": item.album or ""},
            )
        )
    return finalize(
        "library",
        Path(root) if root is not None else Path("library"),
        clips,
        {
            "genre": TaskSpec(False, "genre", min_count=min_count),
            "genres": TaskSpec(True, "genre", min_count=min_count),
            "mood": TaskSpec(False, "mood", min_count=min_count),
            "moods": TaskSpec(True, "mood", min_count=min_count),
        },
        licence=LICENCE,
        skipped=skipped,
        options={"min_count": min_count},
    )
