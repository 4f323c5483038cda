"""FMA, the Free Music Archive dataset (Defferrard et al., ISMIR 2017).

Layout (as distributed)::

    ROOT/fma_metadata/tracks.csv      two header rows (group, column) + a "track_id" row
    ROOT/fma_metadata/genres.csv      genre_id, #tracks, parent, title, top_level
    ROOT/fma_small/000/000002.mp3     audio: fma_small, fma_medium, fma_large or fma_full

``tracks.csv`` is written by pandas from a two-level column index, so its first two
rows name each column's group and name (``track``/``genre_top``, ``set``/``split``, ...)
and its third row holds only the index name ``track_id``. It is read here with the
``csv`` module (no pandas), with or without that third row.

Subsets nest: small is in medium, medium in large (``('set', 'subset')``). The official
split is ``('set', 'split')`` (training / validation / test, artist-filtered by the
authors). Tasks:

``genre``
    ``('track', 'genre_top')``, single-label (16 genres in medium, 8 in small).
``genres``
    ``('track', 'genres_all')``, multi-label (every genre and its ancestors; 161/163
    genres in large), as titles from ``genres.csv``.

Tracks whose audio is known to be missing or cut at the wrong place (wrong duration
metadata: mdeff/fma issues #8, #41 and the wiki's "known issues") are skipped by
default, and so is any track whose file is not on disk.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    TaskSpec,
    canonical_split,
    finalize,
    read_csv,
)

SUBSETS = ("small", "medium", "large")
REQUIRED = (("set", "subset"), ("set", "split"), ("track", "genre_top"), ("track", "genres_all"))
LICENCE = "FMA: metadata CC BY 4.0; audio licensed by each artist (mostly Creative Commons), see tracks.csv"

#: Track ids whose clip has no or almost no audio: the API's duration was wrong, so the
#: 30 s clip was cut beyond (or across) the end of the track (mdeff/fma #8 and #41).
#: 99134, 108925 and 133297 (in fma_small) hold no audio at all.
KNOWN_BAD: frozenset[int] = frozenset({
    1486, 5574, 65753, 80391, 98558, 98559, 98560, 98565, 98566, 98567, 98568, 98569, 98571,
    99134, 105247, 108924, 108925, 126981, 127336, 133297, 143992,
})  # fmt: skip


def read_tracks(path: Path) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Read ``tracks.csv``: its ``(group, column)`` header pairs and its data rows.

    The first column is the track id. Empty group cells (a spreadsheet's merged
    header) inherit the group to their left.

    Raises
    ------
    DatasetError
        If the file is missing or does not have two header rows.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            top = next(reader, None)
            sub = next(reader, None)
            if top is None or sub is None or len(top) != len(sub):
                raise DatasetError(f"{path}: expected two header rows (column group, column name)")
            columns: list[tuple[str, str]] = []
            group = ""
            for i, (g, name) in enumerate(zip(top, sub, strict=True)):
                group = g.strip() or (group if i else "")
                columns.append((group, name.strip()))
            rows = []
            for row in reader:
                if not row:
                    continue
                if row[0].strip() == "track_id" and not any(v.strip() for v in row[1:]):
                    continue  # pandas' index-name row
                rows.append(row)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found (FMA's fma_metadata/tracks.csv)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from None
    return columns, rows


def _genre_titles(path: Path | None) -> dict[int, str]:
    if path is None or not path.is_file():
        return {}
    titles = {}
    for row in read_csv(path):
        try:
            titles[int(row["genre_id"])] = row["title"]
        except (KeyError, ValueError):
            raise DatasetError(f"{path}: expected genre_id and title columns") from None
    return titles


def _ids(cell: str) -> list[int]:
    """``"[21, 12]"`` -> ``[21, 12]``."""
    cell = cell.strip()
    if not cell:
        return []
    try:
        value = json.loads(cell)
    except ValueError:
        raise DatasetError(f"cannot read genre list {cell!r}") from None
    return [int(v) for v in value]


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / "fma_metadata" / name, root / name):
        if candidate.is_file():
            return candidate
    return None


def _audio_dir(root: Path, subset: str, audio: str | Path | None) -> Path | None:
    if audio:
        path = Path(audio).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_dir():
            raise DatasetError(f"fma: audio folder {path} not found")
        return path
    larger = SUBSETS[SUBSETS.index(subset) :] if subset in SUBSETS else ()
    for name in (*(f"fma_{s}" for s in larger), "fma_full"):
        if (root / name).is_dir():
            return root / name
    return None


def _skip_ids(skip: Any) -> set[int]:
    if not skip:
        return set()
    if isinstance(skip, (str, Path)) and Path(skip).expanduser().is_file():
        lines = Path(skip).expanduser().read_text(encoding="utf-8").split()
        return {int(v) for v in lines if v.strip().isdigit()}
    if isinstance(skip, str):
        skip = skip.replace(",", " ").split()
    return {int(v) for v in skip}


#: ``cell(row, group, name)``: a row's value in the official ``(group, name)`` column ("" if absent).
Cell = Callable[[list[str], str, str], str]


def _metadata(root: Path) -> tuple[Path, list[list[str]], Cell]:
    """``tracks.csv``, its rows and a reader of their cells, the official columns checked."""
    tracks = _find(root, "tracks.csv")
    if tracks is None:
        raise DatasetError(f"fma: no tracks.csv in {root} or {root / 'fma_metadata'}")
    columns, rows = read_tracks(tracks)
    index = {col: i for i, col in enumerate(columns)}
    missing = [f"{g}.{c}" for g, c in REQUIRED if (g, c) not in index]
    if missing:
        raise DatasetError(f"{tracks}: missing official column(s) {', '.join(missing)}")

    def cell(row: list[str], group: str, name: str) -> str:
        i = index.get((group, name))
        return row[i].strip() if i is not None and i < len(row) else ""

    return tracks, rows, cell


def _clip(name: str, path: Path, row: list[str], cell: Cell, titles: dict[int, str]) -> Clip:
    """One track's clip: its top genre (``genre``), all its genres (``genres``), artist and split."""
    labels: dict[str, tuple[str, ...]] = {}
    if top := cell(row, "track", "genre_top"):
        labels["genre"] = (top,)
    genres = [titles.get(g, str(g)) for g in _ids(cell(row, "track", "genres_all"))]
    if genres:
        labels["genres"] = tuple(genres)
    artist = cell(row, "artist", "id") or cell(row, "artist", "name") or None
    return Clip(
        id=name,
        path=path,
        artist=artist,
        labels=labels,
        split=canonical_split(cell(row, "set", "split") or None),
        extra={
            "artist_name": cell(row, "artist", "name"),
            "title": cell(row, "track", "title"),
            "album": cell(row, "album", "title"),
            "subset": cell(row, "set", "subset"),
            "genres": [titles.get(g, str(g)) for g in _ids(cell(row, "track", "genres"))],
        },
    )


def load_fma(
    root: Path,
    *,
    subset: str = "small",
    audio: str | Path | None = None,
    skip: Any = (),
    skip_known_bad: bool = True,
    min_count: int = 1,
) -> Dataset:
    """Load FMA from its official metadata and audio folders.

    Parameters
    ----------
    root
        Folder holding ``fma_metadata/`` and ``fma_<subset>/`` (or ``tracks.csv`` itself).
    subset
        ``small``, ``medium``, ``large`` (nested) or ``full`` (every track of tracks.csv).
    audio
        Audio folder (default: ``fma_<subset>``, else the first larger one present).
    skip
        More track ids to leave out: a list, a comma-separated string, or a file with
        one id per line.
    skip_known_bad
        Leave out :data:`KNOWN_BAD` (clips without real audio).
    min_count
        Drop ``genres`` labels on fewer tracks.

    Raises
    ------
    DatasetError
        If ``tracks.csv`` is missing, lacks the official columns, or no track has audio.
    """
    root = Path(root)
    if subset not in (*SUBSETS, "full"):
        raise DatasetError(f"fma: subset must be one of small, medium, large, full; got {subset!r}")
    tracks, rows, cell = _metadata(root)
    titles = _genre_titles(_find(root, "genres.csv") or tracks.with_name("genres.csv"))
    audio_dir = _audio_dir(root, subset, audio)
    skip_ids = _skip_ids(skip) | (set(KNOWN_BAD) if skip_known_bad else set())
    max_rank = SUBSETS.index(subset) if subset in SUBSETS else len(SUBSETS)
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for row in rows:
        try:
            tid = int(row[0])
        except ValueError:
            raise DatasetError(f"{tracks}: bad track id {row[0]!r}") from None
        rank = SUBSETS.index(cell(row, "set", "subset")) if cell(row, "set", "subset") in SUBSETS else None
        if subset != "full" and (rank is None or rank > max_rank):
            continue
        name = f"{tid:06d}"
        if tid in skip_ids:
            skipped.append(
                (name, "known to have no usable audio" if tid in KNOWN_BAD else "in the skip list")
            )
            continue
        path = (audio_dir or root / f"fma_{subset}") / name[:3] / f"{name}.mp3"
        if not path.is_file():
            skipped.append((name, f"no audio file {path}"))
            continue
        clips.append(_clip(name, path, row, cell, titles))
    return finalize(
        "fma",
        root,
        clips,
        {"genre": TaskSpec(False, "genre"), "genres": TaskSpec(True, "genre", min_count=min_count)},
        licence=LICENCE,
        skipped=skipped,
        options={
            "subset": subset,
            "audio": str(audio) if audio else None,
            "skip_known_bad": skip_known_bad,
            "min_count": min_count,
        },
    )
