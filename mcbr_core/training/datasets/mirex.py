"""The MIREX-like multimodal mood set (Panda, Malheiro, Rocha, Oliveira & Paiva, CMMR 2013).

AllMusic 30-s previews filed under the five mood clusters of the MIREX Audio Mood
Classification task, each under one AllMusic mood word of its cluster.

Layout::

    ROOT/audio/<NNN>.mp3
    ROOT/LABELS.csv          clip, path, cluster, mood, artist, title, year

``path`` is relative to ``ROOT`` (``audio/<NNN>.mp3`` when empty). Artists are written
"Last, First" as in the source; artist-disjoint folds group on them as written
(case- and space-insensitive, :func:`mcbr_core.training.splits.group_key`).

Tasks:

``cluster``
    the MIREX cluster ``C1``..``C5`` (:data:`CLUSTERS`), single-label.
``mood``
    the AllMusic mood word the clip was filed under (``"Rollicking"``,
    ``"Tense - Anxious"``, ...), single-label. The source's spellings are normalised
    (:data:`SPELLINGS`: ``Agressive`` -> ``Aggressive``, ``whimsical`` -> ``Whimsical``).
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
    require,
)

#: The five MIREX mood clusters and the AllMusic words that define them (Hu & Downie 2007).
CLUSTERS: dict[str, tuple[str, ...]] = {
    "C1": ("passionate", "rousing", "confident", "boisterous", "rowdy"),
    "C2": ("rollicking", "cheerful", "fun", "sweet", "amiable/good natured"),
    "C3": ("literate", "poignant", "wistful", "bittersweet", "autumnal", "brooding"),
    "C4": ("humorous", "silly", "campy", "quirky", "whimsical", "witty", "wry"),
    "C5": ("aggressive", "fiery", "tense/anxious", "intense", "volatile", "visceral"),
}
#: The source's misspelt or lower-cased mood words, and what they stand for.
SPELLINGS = {"Agressive": "Aggressive", "whimsical": "Whimsical"}
LICENCE = "MIREX-like mood set: AllMusic 30-s previews, research use only (Panda et al. 2013)"


def load_mirex(root: Path) -> Dataset:
    """Load the MIREX-like mood set.

    Parameters
    ----------
    root
        Folder holding ``LABELS.csv`` and ``audio/``.

    Raises
    ------
    DatasetError
        If ``LABELS.csv`` is missing or lacks a column, or a clip names an unknown cluster.
    """
    root = Path(root)
    source = root / "LABELS.csv"
    rows = read_csv(source)
    if rows:
        require(rows[0], ("clip", "cluster", "mood", "artist"), source=source)
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for r in rows:
        cid, cluster = r["clip"], r["cluster"].upper()
        if cluster not in CLUSTERS:
            raise DatasetError(
                f"mirex: clip {cid} has unknown cluster {r['cluster']!r} (known: {', '.join(CLUSTERS)})"
            )
        path = root / (r.get("path") or f"audio/{cid}.mp3")
        if not path.is_file():
            skipped.append((cid, f"no audio file {path}"))
            continue
        labels: dict[str, tuple[str, ...]] = {"cluster": (cluster,)}
        if word := r["mood"].strip():
            labels["mood"] = (SPELLINGS.get(word, word),)
        clips.append(
            Clip(
                id=cid,
                path=path,
                artist=r["artist"] or None,
                labels=labels,
                extra={"title": r.get("title", ""), "year": r.get("year", "")},
            )
        )
    return finalize(
        "mirex",
        root,
        clips,
        {"cluster": TaskSpec(False, "other"), "mood": TaskSpec(False, "mood")},
        licence=LICENCE,
        skipped=skipped,
    )
