"""Emotify (Aljanaki, Wiering & Veltkamp 2016): 400 Magnatune excerpts, 4 genres, GEMS emotions.

Layout::

    ROOT/emotifymusic/<genre>/<n>.mp3    genre in classical, rock, electronic, pop
    ROOT/data.csv                        the original per-listener annotations
    ROOT/LABELS.csv                      optional, derived: one row per clip (artist, means, top emotion)

``data.csv`` has one row per listener and clip: ``track id, genre``, the nine GEMS
emotions as 0/1 (``amazement, solemnity, tenderness, nostalgia, calmness, power,
joyful_activation, tension, sadness``), then the listener's mood, likes and
demographics. Track ids are global: ``n`` for classical, ``100 + n`` rock, ``200 + n``
electronic, ``300 + n`` pop (``n`` is the file number). The header has spaces after
the commas; they are stripped.

Tasks:

``genre``
    the folder's genre, single-label (4 classes).
``mood``
    the emotion most listeners ticked (``top_emotion`` of LABELS.csv where present,
    else the first maximum of the per-clip means), single-label.
``moods``
    every emotion ticked by at least ``threshold`` of the clip's listeners, multi-label.

Labels are spelled with spaces (``"joyful activation"``). Artists come from
LABELS.csv (``data.csv`` has none); without it artist-disjoint folds fall back to
clip-level folds. The MP3s' own ID3 genre tags are never read.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mcbr_core.training.datasets.base import Clip, Dataset, DatasetError, TaskSpec, finalize, read_csv

EMOTIONS = (
    "amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension",
    "sadness",
)  # fmt: skip
OFFSETS = {"classical": 0, "rock": 100, "electronic": 200, "pop": 300}
LICENCE = "Emotify: Magnatune music, CC BY-NC-SA; annotations for research use (Aljanaki et al. 2016)"


def _label(emotion: str) -> str:
    return emotion.replace("_", " ")


def _means_from_data(path: Path) -> dict[int, tuple[str, dict[str, float], int]]:
    """Track id -> (genre, mean of each emotion, number of listeners)."""
    sums: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(EMOTIONS, 0.0))
    genre: dict[int, str] = {}
    count: dict[int, int] = defaultdict(int)
    rows = read_csv(path)
    if rows:
        missing = [c for c in ("track id", "genre", *EMOTIONS) if c not in rows[0]]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
    for row in rows:
        try:
            tid = int(row["track id"])
            for e in EMOTIONS:
                sums[tid][e] += float(row[e] or 0)
        except ValueError as exc:
            raise DatasetError(f"{path}: bad row for track {row.get('track id')!r} ({exc})") from None
        genre[tid] = row["genre"].lower()
        count[tid] += 1
    return {t: (genre[t], {e: sums[t][e] / count[t] for e in EMOTIONS}, count[t]) for t in sums}


def load_emotify(root: Path, *, threshold: float = 0.3) -> Dataset:
    """Load Emotify.

    Parameters
    ----------
    root
        Folder with ``emotifymusic/`` and ``data.csv`` (and optionally ``LABELS.csv``).
    threshold
        Share of listeners an emotion needs to count in the multi-label ``moods`` task.

    Raises
    ------
    DatasetError
        If neither ``data.csv`` nor ``LABELS.csv`` is there.
    """
    root = Path(root)
    if not 0.0 < threshold <= 1.0:
        raise DatasetError(f"emotify: threshold must be in (0, 1], got {threshold}")
    data = _means_from_data(root / "data.csv") if (root / "data.csv").is_file() else {}
    derived = {}
    if (root / "LABELS.csv").is_file():
        for row in read_csv(root / "LABELS.csv"):
            derived[int(row["track_id"])] = row
    if not data and not derived:
        raise DatasetError(f"emotify: neither data.csv nor LABELS.csv in {root}")
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for tid in sorted(set(data) | set(derived)):
        row = derived.get(tid, {})
        if tid in data:
            genre, means, listeners = data[tid]
        else:
            genre = row["genre"].lower()
            means = {e: float(row.get(f"mean_{e}") or 0) for e in EMOTIONS}
            listeners = int(row.get("n_annotations") or 0)
        if genre not in OFFSETS:
            raise DatasetError(f"emotify: track {tid} has unknown genre {genre!r}")
        path = (
            root / row["path"]
            if row.get("path")
            else root / "emotifymusic" / genre / f"{tid - OFFSETS[genre]}.mp3"
        )
        if not path.is_file():
            skipped.append((str(tid), f"no audio file {path}"))
            continue
        top = row.get("top_emotion") or max(EMOTIONS, key=lambda e: (means[e], -EMOTIONS.index(e)))
        ticked = tuple(_label(e) for e in EMOTIONS if means[e] >= threshold)
        labels = {"genre": (genre,), "mood": (_label(top),)}
        if ticked:
            labels["moods"] = ticked
        clips.append(
            Clip(
                id=str(tid),
                path=path,
                artist=row.get("artist") or None,
                labels=labels,
                extra={
                    "title": row.get("title", ""),
                    "album": row.get("album", ""),
                    "listeners": listeners,
                    "means": {_label(e): round(v, 4) for e, v in means.items()},
                },
            )
        )
    return finalize(
        "emotify",
        root,
        clips,
        {"genre": TaskSpec(False, "genre"), "mood": TaskSpec(False, "mood"), "moods": TaskSpec(True, "mood")},
        licence=LICENCE,
        skipped=skipped,
        options={"threshold": threshold},
    )
