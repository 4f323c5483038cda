"""The MIREX-like mood set's loader and the combined ``mcbr-tags`` dataset, on tiny generated layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcbr_core.training.datasets.base import DatasetError
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.datasets.tags import (
    ALLMUSIC_GENRES,
    GENRE_TREE,
    GENRES,
    MOOD_WORDS,
    MOODS,
    artist_name,
    combine,
    genre_labels,
    load_tags,
    mood_labels,
)
from mcbr_core.training.splits import group_key, grouped_folds
from tests.core.test_datasets import audio, write_emotify, write_fourq

MIREX_ROWS = [
    ("001", "C1", "Boisterous", "Brown, Ruth"),
    ("002", "C2", "Rollicking", "Blakey, Art & the Jazz Messengers"),
    ("003", "C5", "Agressive", "Nelly"),
    ("004", "C3", "Wistful", "Brown, Ruth"),
    ("005", "C4", "whimsical", "Jones, Spike"),
    ("006", "C4", "Silly", "Gone, Missing"),  # no audio
]


def write_mirex(root: Path) -> Path:
    lines = ["clip,path,cluster,mood,artist,title,year"]
    for cid, cluster, mood, artist in MIREX_ROWS:
        lines.append(f'{cid},audio/{cid}.mp3,{cluster},{mood},"{artist}",Title {cid},1990')
    root.mkdir(parents=True)
    (root / "LABELS.csv").write_text("\n".join(lines) + "\n")
    for cid, *_ in MIREX_ROWS[:-1]:
        audio(root / "audio" / f"{cid}.mp3")
    return root


def test_mirex_clusters_and_mood_words(tmp_path: Path) -> None:
    ds = load_dataset("mirex", write_mirex(tmp_path / "mirex"))
    ids = {c.id: c for c in ds.clips}
    assert set(ids) == {"001", "002", "003", "004", "005"} and dict(ds.skipped)["006"].startswith(
        "no audio file"
    )
    assert ids["001"].labels == {"cluster": ("C1",), "mood": ("Boisterous",)}
    assert ids["003"].labels["mood"] == ("Aggressive",) and ids["005"].labels["mood"] == (
        "Whimsical",
    )  # spelling
    assert (
        ds.tasks["cluster"].labels == ("C1", "C2", "C3", "C4", "C5") and ds.tasks["cluster"].kind == "other"
    )
    assert ds.tasks["mood"].kind == "mood" and not ds.tasks["mood"].multilabel
    assert ids["001"].artist == "Brown, Ruth" and ids["001"].extra["year"] == "1990"
    # artist-disjoint: both Ruth Brown clips land in one fold
    groups = [group_key(c.artist, c.id) for c in ds.clips]
    folds = grouped_folds(groups, [[1.0]] * len(groups), 3, seed=0)
    assert folds[0] == folds[3]


def test_mirex_rejects_an_unknown_cluster_and_a_missing_column(tmp_path: Path) -> None:
    root = write_mirex(tmp_path / "mirex")
    (root / "LABELS.csv").write_text("clip,path,cluster,mood,artist\n001,audio/001.mp3,C9,Fun,X\n")
    with pytest.raises(DatasetError, match="clip 001 has unknown cluster 'C9'"):
        load_dataset("mirex", root)
    (root / "LABELS.csv").write_text("clip,path,mood,artist\n001,audio/001.mp3,Fun,X\n")
    with pytest.raises(DatasetError, match="missing column.*cluster"):
        load_dataset("mirex", root)


def test_vocabularies_map_every_allmusic_family_and_only_known_moods() -> None:
    assert len(ALLMUSIC_GENRES) == 21 and set(GENRE_TREE) == set(GENRES)
    assert {m for ms in MOOD_WORDS.values() for m in ms} == set(MOODS) and len(MOODS) == 12
    assert genre_labels(("Pop/Rock", "Rap")) == ("pop", "rock", "hip hop")
    assert genre_labels(("Pop/Rock", "Rap"), ("rock",)) == ("rock", "hip hop")
    assert mood_labels(("Angry", "Circular", "Tense/Anxious")) == ("aggressive", "tense")
    assert artist_name("Brown, Ruth") == "Ruth Brown" and artist_name("Nelly") == "Nelly"
    assert artist_name("Blakey, Art & the Jazz Messengers") == "Art & the Jazz Messengers Blakey"


def test_tags_combines_every_part_on_one_vocabulary(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_fourq(root / "4q")
    write_emotify(root / "emotify", labels_csv=True)
    write_mirex(root / "mirex")
    ds = load_dataset("mcbr-tags", root)
    ids = {c.id: c for c in ds.clips}
    assert {c.extra["dataset"] for c in ds.clips} == {"4q", "emotify", "mirex"}
    q1, q2 = ids["4q:MT01"], ids["4q:MT02"]
    assert q1.labels["genres"] == ("world music", "jazz") and q2.labels["genres"] == ("pop", "rock")
    assert q1.labels["arousal"] == ("high",) and q1.labels["valence"] == ("positive",)
    assert ids["4q:MT03"].labels["arousal"] == ("low",) and ids["4q:MT03"].labels["valence"] == ("negative",)
    assert set(q1.labels["moods"]) == {"aggressive", "energetic", "uplifting"}  # Cathartic; Fiery
    assert (
        q2.labels["moods"] == ("tense",) and "moods" not in ids["4q:MT03"].labels
    )  # Circular; Messy: no word
    # GEMS emotions ticked by >= 30% of listeners: power, joyful activation, tension
    assert ids["emotify:101"].labels == {"genres": ("rock",), "moods": ("energetic", "happy", "tense")}
    no_gems = load_dataset("mcbr-tags", root, emotify_moods=False)
    assert {c.id: c for c in no_gems.clips}["emotify:101"].labels == {"genres": ("rock",)}
    assert no_gems.options == {"emotify_moods": False}
    assert ids["mirex:003"].labels == {"moods": ("aggressive",), "cluster": ("C5",)}
    assert ids["mirex:001"].artist == ids["mirex:004"].artist == "Ruth Brown"  # one group across parts
    assert ds.tasks["genres"].multilabel and ds.tasks["genres"].kind == "genre"
    assert ds.tasks["moods"].kind == "mood" and set(ds.tasks["arousal"].labels) == {"high", "low"}
    (tmp_path / "poprock.csv").write_text("song,labels\nMT02,rock\n")
    split = load_dataset("mcbr-tags", root, poprock=str(tmp_path / "poprock.csv"))
    assert {c.id: c for c in split.clips}["4q:MT02"].labels["genres"] == ("rock",)
    (tmp_path / "bad.csv").write_text("song,labels\nMT02,jazz\n")
    with pytest.raises(DatasetError, match="expected pop and/or rock"):
        load_dataset("mcbr-tags", root, poprock=str(tmp_path / "bad.csv"))


def test_tags_needs_a_part(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="none of 4q, emotify, mirex, gtzan"):
        load_tags(tmp_path)
    with pytest.raises(DatasetError, match="unknown parts"):
        combine({"fma": None})  # type: ignore[dict-item]
