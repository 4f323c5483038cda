"""The WebAPI dataset of Whitell (2019), in the file format this project defines for it.

Whitell gathered it from the Spotify Web API and lyrics/location sources: every
*track* has a 30-s audio clip, lyrics, one album and one artist; every *album* has a
release year and cover art; every *artist* has a list of related artists, genre
labels and the latitude/longitude of its origin. The thesis does not publish files,
so this loader reads three CSV files (UTF-8, a header row, ``|`` between multiple
values, paths relative to ``ROOT``)::

    ROOT/tracks.csv    track_id, artist_id, album_id, audio[, title, lyrics, split]
    ROOT/artists.csv   artist_id, name, genres, related[, latitude, longitude, origin]
    ROOT/albums.csv    album_id, year[, artist_id, title, art]
    ROOT/audio/...     the clips (any layout; tracks.csv names each file)

``split`` (train/val/test, or training/validation/test) is optional; Whitell's own
split is 80/10/10 with artists kept apart, which the training loop makes itself when
the column is absent. Tasks:

``genres``
    the artist's genres, multi-label (Spotify's genres; ``min_count`` trims the long tail).
``decade``
    the album's release decade (``"1990s"``), single-label.

Related artists, location, year and lyrics are kept in each clip's ``extra``.
See ``docs/datasets.md`` for an example.
"""

from __future__ import annotations

from pathlib import Path

from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    TaskSpec,
    canonical_split,
    finalize,
    read_csv,
    require,
    split_multi,
)

LICENCE = (
    "WebAPI: metadata from the Spotify Web API (its terms apply); audio previews are the labels' copyright"
)


def _float(value: str) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def load_webapi(root: Path, *, min_count: int = 1) -> Dataset:
    """Load a WebAPI dataset folder.

    Parameters
    ----------
    root
        Folder with ``tracks.csv``, ``artists.csv`` and ``albums.csv``.
    min_count
        Drop genre labels held by fewer tracks.

    Raises
    ------
    DatasetError
        On a missing file or column, or a track naming an unknown artist or album.
    """
    root = Path(root)
    tracks = read_csv(root / "tracks.csv")
    artists = {
        r["artist_id"]: r for r in _rows(root / "artists.csv", ("artist_id", "name", "genres", "related"))
    }
    albums = {r["album_id"]: r for r in _rows(root / "albums.csv", ("album_id", "year"))}
    if tracks:
        require(tracks[0], ("track_id", "artist_id", "album_id", "audio"), source=root / "tracks.csv")
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for t in tracks:
        artist = artists.get(t["artist_id"])
        album = albums.get(t["album_id"])
        if artist is None or album is None:
            what = "artist" if artist is None else "album"
            raise DatasetError(f"{root / 'tracks.csv'}: track {t['track_id']} names an unknown {what}")
        path = root / t["audio"] if t["audio"] else None
        if path is None or not path.is_file():
            skipped.append((t["track_id"], f"no audio file {path}"))
            continue
        labels: dict[str, tuple[str, ...]] = {}
        if genres := split_multi(artist["genres"], "|"):
            labels["genres"] = genres
        year = int(album["year"][:4]) if album["year"][:4].isdigit() else None
        if year is not None:
            labels["decade"] = (f"{year // 10 * 10}s",)
        lyrics = t.get("lyrics", "")
        clips.append(
            Clip(
                id=t["track_id"],
                path=path,
                artist=t["artist_id"],
                labels=labels,
                split=canonical_split(t.get("split") or None),
                extra={
                    "title": t.get("title", ""),
                    "artist_name": artist["name"],
                    "album_id": t["album_id"],
                    "album": album.get("title", ""),
                    "year": year,
                    "related": split_multi(artist["related"], "|"),
                    "latitude": _float(artist.get("latitude", "")),
                    "longitude": _float(artist.get("longitude", "")),
                    "origin": artist.get("origin", ""),
                    "lyrics": str(root / lyrics) if lyrics else None,
                    "art": str(root / album["art"]) if album.get("art") else None,
                },
            )
        )
    return finalize(
        "webapi",
        root,
        clips,
        {"genres": TaskSpec(True, "genre", min_count=min_count), "decade": TaskSpec(False, "other")},
        licence=LICENCE,
        skipped=skipped,
        options={"min_count": min_count},
    )


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    rows = read_csv(path)
    if rows:
        require(rows[0], columns, source=path)
    return rows
