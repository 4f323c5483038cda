"""GTZAN (Tzanetakis & Cook 2002): 1000 30-s excerpts, 10 genres.

Layout::

    ROOT/genres/<genre>/<genre>.NNNNN.wav     (.au in the original archive; .mp3 copies work too)

``ROOT`` may also be the ``genres`` folder itself (or Kaggle's ``genres_original``).
Files are matched on their stem, so any audio suffix works.

Splits. By default the fault-filtered split of Kereliuk, Sturm & Larsen (2015) is
used: 443/197/290 excerpts for train/val/test with artists kept apart, and the 70
repeated, mislabelled or distorted excerpts Sturm (2012, 2013) found are left out
(``filtered=False`` keeps them, without a split). ``jazz.00054`` is always left out:
it cannot be decoded in the original archive.

Folds. Each clip also gets one of ``folds`` (default 10) stratified folds, the
literature's 10-fold protocol (Zhang et al. 2015). GTZAN ships no artist names, so
these folds keep artists apart only when an ``artists`` CSV (columns ``file`` or
``id``, and ``artist``; e.g. Sturm's annotations) is given; otherwise they are
stratified by genre alone. Report fault-filtered results as the artist-filtered ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mcbr_core.training.datasets.base import (
    AUDIO_EXTENSIONS,
    Clip,
    Dataset,
    DatasetError,
    TaskSpec,
    finalize,
    read_csv,
)
from mcbr_core.training.splits import (
    GTZAN_EXCLUDED,
    GTZAN_UNREADABLE,
    group_key,
    grouped_folds,
    gtzan_fault_filtered,
)

LICENCE = "GTZAN: research use only; the excerpts remain their copyright owners' (Tzanetakis & Cook 2002)"
_STEM = re.compile(r"^(?P<genre>[a-z_\-]+)\.(?P<n>\d{5})$", re.IGNORECASE)


def _genres_dir(root: Path) -> Path:
    for name in ("genres", "genres_original", "Data/genres_original"):
        if (root / name).is_dir():
            return root / name
    if root.is_dir() and any(p.is_dir() and any(p.glob(f"{p.name}.*")) for p in root.iterdir()):
        return root
    raise DatasetError(f"gtzan: no genres/<genre>/<genre>.NNNNN.wav folders under {root}")


def _artists(path: str | Path | None) -> dict[str, str]:
    if not path:
        return {}
    out = {}
    for row in read_csv(Path(path).expanduser()):
        key = row.get("file") or row.get("id") or row.get("path") or ""
        name = Path(key).name
        if name.lower().endswith(AUDIO_EXTENSIONS):
            name = name.rsplit(".", 1)[0]
        if name and row.get("artist"):
            out[name] = row["artist"]
    return out


def _excerpts(folder: Path) -> dict[str, Path]:
    """A genre folder's excerpts (``genre.NNNNN``) by stem, each in its preferred audio format."""
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        m = _STEM.match(path.stem)
        if not (m and path.suffix.lower() in rank and m["genre"].lower() == folder.name.lower()):
            continue
        best = found.get(path.stem)
        if best is None or rank[path.suffix.lower()] < rank[best.suffix.lower()]:
            found[path.stem] = path
    return found


def _with_folds(clips: list[Clip], folds: int, seed: int) -> list[Clip]:
    """The clips in ``folds`` artist-grouped, genre-stratified folds (unchanged with too few groups)."""
    groups = [group_key(c.artist, c.id) for c in clips]
    if len(set(groups)) < folds:
        return clips
    labels = sorted({c.labels["genre"][0] for c in clips})
    onehot = np.zeros((len(clips), len(labels)))
    onehot[np.arange(len(clips)), [labels.index(c.labels["genre"][0]) for c in clips]] = 1.0
    assigned = grouped_folds(groups, onehot, folds, seed=seed)
    return [Clip(c.id, c.path, c.artist, c.labels, c.split, int(f), c.extra) for c, f in zip(clips, assigned)]


def load_gtzan(
    root: Path,
    *,
    filtered: bool = True,
    folds: int = 10,
    seed: int = 0,
    artists: str | Path | None = None,
) -> Dataset:
    """Load GTZAN.

    Parameters
    ----------
    root
        Folder holding ``genres/`` (or the ``genres`` folder itself).
    filtered
        Leave out the excerpts the fault-filtered split excludes.
    folds
        Number of predefined stratified folds (0: none).
    seed
        Seed of the fold assignment.
    artists
        Optional CSV mapping excerpts to artists (``file``/``id`` and ``artist`` columns).
    """
    root = Path(root)
    genres_dir = _genres_dir(root)
    split_of = gtzan_fault_filtered()
    artist_of = _artists(artists)
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for folder in sorted(p for p in genres_dir.iterdir() if p.is_dir()):
        for stem, path in sorted(_excerpts(folder).items()):
            key = stem.lower()
            if key in GTZAN_UNREADABLE:
                skipped.append((stem, "unreadable in the original GTZAN archive"))
                continue
            if filtered and key in GTZAN_EXCLUDED:
                skipped.append(
                    (stem, "left out by the fault-filtered split (repetition, mislabelling or distortion)")
                )
                continue
            clips.append(
                Clip(
                    id=stem,
                    path=path,
                    artist=artist_of.get(stem),
                    labels={"genre": (folder.name.lower(),)},
                    split=split_of.get(key) if filtered else None,
                )
            )
    if folds:
        clips = _with_folds(clips, folds, seed)
    return finalize(
        "gtzan",
        root,
        clips,
        {"genre": TaskSpec(False, "genre")},
        licence=LICENCE,
        skipped=skipped,
        options={
            "filtered": filtered,
            "folds": folds,
            "seed": seed,
            "artists": str(artists) if artists else None,
        },
    )
