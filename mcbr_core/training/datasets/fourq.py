"""4Q, the audio emotion dataset of Panda, Malheiro & Paiva (IEEE TAFFC 2018).

Layout (the authors' archive)::

    ROOT/MER_audio_taffc_dataset/Q1/<song>.mp3 ... Q4/<song>.mp3
    ROOT/MER_audio_taffc_dataset/panda_dataset_taffc_metadata.csv
    ROOT/MER_audio_taffc_dataset/panda_dataset_taffc_annotations.csv

``ROOT`` may also be ``MER_audio_taffc_dataset`` itself. The metadata file (quoted
CSV) has ``Song, Artist, Title, Quadrant, PQuad, MoodsTotal, Moods, MoodsFoundStr,
MoodsStr, MoodsStrSplit, Genres, GenresStr, Sample, SampleURL``; ``MoodsStr`` and
``GenresStr`` are AllMusic's moods and genres separated by ``"; "``. Without it the
annotations file (``Song, Quadrant``) or a derived ``ROOT/LABELS.csv``
(``song_id, quadrant, path, artist, title, allmusic_genres, allmusic_moods``) is read.

Tasks:

``quadrant``
    Russell's quadrant ``Q1``..``Q4``, single-label.
``mood``
    the same partition as mood names (:data:`QUADRANT_MOODS`: Q1 happy, Q2 tense,
    Q3 sad, Q4 calm), single-label: what a tagger writes to the MOOD field.
``moods``, ``genres``
    AllMusic's moods and genres, multi-label (``min_count`` trims rare ones).
"""

from __future__ import annotations

from pathlib import Path

from mcbr_core.training.datasets.base import (
    Clip,
    Dataset,
    DatasetError,
    TaskSpec,
    finalize,
    read_csv,
    split_multi,
)

#: Quadrant -> (mood name used as label, what the quadrant means).
QUADRANT_MOODS: dict[str, tuple[str, str]] = {
    "Q1": ("happy", "high arousal, positive valence: happy, energetic, exuberant"),
    "Q2": ("tense", "high arousal, negative valence: tense, angry, anxious"),
    "Q3": ("sad", "low arousal, negative valence: sad, depressed"),
    "Q4": ("calm", "low arousal, positive valence: calm, relaxed"),
}
LICENCE = "4Q: AllMusic previews released by the authors for research only (Panda et al. 2018)"
FOLDER = "MER_audio_taffc_dataset"


def _rows(root: Path, base: Path) -> list[dict[str, str]]:
    """Rows normalised to song, quadrant, artist, title, moods, genres, pquad, path."""
    meta = base / "panda_dataset_taffc_metadata.csv"
    if meta.is_file():
        return [
            {"song": r.get("Song", ""), "quadrant": r.get("Quadrant", ""), "artist": r.get("Artist", ""),
             "title": r.get("Title", ""), "moods": r.get("MoodsStr", ""), "genres": r.get("GenresStr", ""),
             "pquad": r.get("PQuad", ""), "path": ""}
            for r in read_csv(meta, encoding="latin-1" if _not_utf8(meta) else "utf-8-sig")
        ]  # fmt: skip
    derived = root / "LABELS.csv"
    if derived.is_file():
        return [
            {"song": r.get("song_id", ""), "quadrant": r.get("quadrant", ""), "artist": r.get("artist", ""),
             "title": r.get("title", ""), "moods": r.get("allmusic_moods", ""),
             "genres": r.get("allmusic_genres", ""), "pquad": r.get("pquad", ""), "path": r.get("path", "")}
            for r in read_csv(derived)
        ]  # fmt: skip
    notes = base / "panda_dataset_taffc_annotations.csv"
    if notes.is_file():
        return [{"song": r.get("Song", ""), "quadrant": r.get("Quadrant", ""), "artist": "", "title": "",
                 "moods": "", "genres": "", "pquad": "", "path": ""} for r in read_csv(notes)]  # fmt: skip
    rows = []
    for q in QUADRANT_MOODS:
        for path in sorted((base / q).glob("*.mp3")):
            rows.append({"song": path.stem, "quadrant": q, "artist": "", "title": "", "moods": "", "genres": "",
                         "pquad": "", "path": ""})  # fmt: skip
    return rows


def _not_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def load_fourq(root: Path, *, min_count: int = 1) -> Dataset:
    """Load 4Q.

    Parameters
    ----------
    root
        Folder holding ``MER_audio_taffc_dataset/`` (or that folder).
    min_count
        Drop AllMusic moods and genres held by fewer clips.

    Raises
    ------
    DatasetError
        If no metadata and no quadrant folders are found.
    """
    root = Path(root)
    base = root / FOLDER if (root / FOLDER).is_dir() else root
    rows = _rows(root, base)
    if not rows:
        raise DatasetError(f"4q: no metadata CSV and no Q1..Q4 folders under {root}")
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for r in rows:
        song, quadrant = r["song"], r["quadrant"].upper()
        if quadrant not in QUADRANT_MOODS:
            raise DatasetError(f"4q: song {song} has unknown quadrant {r['quadrant']!r}")
        path = base / r["path"] if r["path"] else base / quadrant / f"{song}.mp3"
        if not path.is_file():
            skipped.append((song, f"no audio file {path}"))
            continue
        labels: dict[str, tuple[str, ...]] = {"quadrant": (quadrant,), "mood": (QUADRANT_MOODS[quadrant][0],)}
        if moods := split_multi(r["moods"], ";"):
            labels["moods"] = moods
        if genres := split_multi(r["genres"], ";"):
            labels["genres"] = genres
        clips.append(
            Clip(
                id=song,
                path=path,
                artist=r["artist"] or None,
                labels=labels,
                extra={
                    "title": r["title"],
                    "pquad": float(r["pquad"]) if r["pquad"] else None,
                    "quadrant_meaning": QUADRANT_MOODS[quadrant][1],
                },
            )
        )
    return finalize(
        "4q",
        root,
        clips,
        {
            "quadrant": TaskSpec(False, "other"),
            "mood": TaskSpec(False, "mood"),
            "moods": TaskSpec(True, "mood", min_count=min_count),
            "genres": TaskSpec(True, "genre", min_count=min_count),
        },
        licence=LICENCE,
        skipped=skipped,
        options={"min_count": min_count},
    )
