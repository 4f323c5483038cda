"""Dataset loaders on tiny generated copies of each dataset's real layout, and the splits."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mcbr_core.errors import ConfigError
from mcbr_core.plugins import Plugins
from mcbr_core.training.datasets.base import DatasetError
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.datasets.fma import KNOWN_BAD, read_tracks
from mcbr_core.training.splits import (
    GTZAN_EXCLUDED,
    GTZAN_UNREADABLE,
    group_key,
    grouped_folds,
    gtzan_fault_filtered,
    holdout_split,
)
from tests.audiogen import tone, write_audio

ROOT = Path(__file__).resolve().parents[2]


def audio(path: Path, freq: float = 440.0) -> Path:
    """A real (very short) audio file in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone(0.25, sr=8000, freq=freq)
    if path.suffix == ".au":
        sf.write(str(path), y, 8000, format="AU", subtype="PCM_16")
        return path
    return write_audio(path, y, 8000)


# -- FMA -----------------------------------------------------------------------------------

# The official tracks.csv has 52 columns in four groups; these are the ones a loader
# may read, in the official order and spelling.
FMA_COLUMNS = [
    ("album", "id"), ("album", "title"), ("artist", "id"), ("artist", "name"),
    ("set", "split"), ("set", "subset"),
    ("track", "genre_top"), ("track", "genres"), ("track", "genres_all"), ("track", "license"), ("track", "title"),
]  # fmt: skip
FMA_GENRES = {
    2: "International",
    10: "Pop",
    12: "Rock",
    15: "Electronic",
    21: "Hip-Hop",
    25: "Punk",
    76: "Experimental Pop",
}


def fma_row(tid, artist, split, subset, top, genres, genres_all):
    return [tid, 100 + artist, f"Album {artist}", artist, f"Artist {artist}", split, subset, top,
            json.dumps(genres).replace(",", ", "), json.dumps(genres_all).replace(",", ", "),
            "Attribution", f"Track {tid}"]  # fmt: skip


FMA_TRACKS = [
    fma_row(2, 1, "training", "small", "Hip-Hop", [21], [21]),
    fma_row(3, 1, "training", "medium", "Hip-Hop", [21], [21]),
    fma_row(5, 2, "validation", "small", "Rock", [25], [12, 25]),
    fma_row(10, 3, "test", "small", "Pop", [10, 76], [10, 76, 2]),
    fma_row(20, 4, "training", "large", "", [15], [15]),
    fma_row(99134, 5, "training", "small", "Pop", [10], [10]),  # known to have no audio
    fma_row(140, 6, "test", "small", "Electronic", [15], [15]),  # file missing on disk
]


def write_fma(root: Path, *, index_row: bool = True) -> Path:
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    with (meta / "tracks.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([""] + [g for g, _ in FMA_COLUMNS])
        w.writerow([""] + [c for _, c in FMA_COLUMNS])
        if index_row:
            w.writerow(["track_id"] + [""] * len(FMA_COLUMNS))
        w.writerows(FMA_TRACKS)
    with (meta / "genres.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        for gid, title in FMA_GENRES.items():
            w.writerow([gid, 1, 0, title, gid])
    for row in FMA_TRACKS:
        if row[0] != 140:
            audio(root / "fma_large" / f"{row[0]:06d}"[:3] / f"{row[0]:06d}.mp3")
    return root


def test_fma_tracks_csv_has_two_header_rows_and_the_index_row(tmp_path: Path) -> None:
    columns, rows = read_tracks(write_fma(tmp_path) / "fma_metadata" / "tracks.csv")
    assert columns[0] == ("", "") and ("set", "subset") in columns and ("track", "genres_all") in columns
    assert [r[0] for r in rows] == [str(r[0]) for r in FMA_TRACKS]


@pytest.mark.parametrize("index_row", [True, False])
def test_fma_subsets_splits_and_labels(tmp_path: Path, index_row: bool) -> None:
    root = write_fma(tmp_path, index_row=index_row)
    small = load_dataset("fma", root, subset="small")
    assert [c.id for c in small.clips] == ["000002", "000005", "000010"]
    by_id = {c.id: c for c in small.clips}
    assert (
        by_id["000002"].split == "train"
        and by_id["000005"].split == "val"
        and by_id["000010"].split == "test"
    )
    assert by_id["000010"].labels["genre"] == ("Pop",)
    assert by_id["000010"].labels["genres"] == ("Pop", "Experimental Pop", "International")
    assert by_id["000005"].artist == "2" and by_id["000005"].extra["artist_name"] == "Artist 2"
    assert small.tasks["genre"].labels == ("Hip-Hop", "Pop", "Rock") and not small.tasks["genre"].multilabel
    assert small.tasks["genres"].multilabel and small.tasks["genres"].kind == "genre"
    reasons = dict(small.skipped)
    assert 99134 in KNOWN_BAD and "no usable audio" in reasons["099134"]
    assert "no audio file" in reasons["000140"]
    medium = load_dataset("fma", root, subset="medium")
    assert {c.id for c in medium.clips} == {"000002", "000003", "000005", "000010"}  # small is inside medium
    large = load_dataset("fma", root, subset="large")
    assert "genre" not in {c.id: c for c in large.clips}["000020"].labels  # no genre_top outside medium
    assert load_dataset("fma", root, subset="small", skip_known_bad=False, skip="2,5").skipped[0] == (
        "000002",
        "in the skip list",
    )


def test_fma_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no tracks.csv"):
        load_dataset("fma", tmp_path)
    meta = tmp_path / "fma_metadata"
    meta.mkdir()
    (meta / "tracks.csv").write_text(",track\n,title\n1,x\n")
    with pytest.raises(DatasetError, match="set.subset"):
        load_dataset("fma", tmp_path)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        load_dataset("fma", tmp_path, subsett="small")


# -- GTZAN ---------------------------------------------------------------------------------


def write_gtzan(root: Path, stems: list[str], ext: str = ".wav") -> Path:
    for stem in stems:
        genre = stem.split(".")[0]
        audio(root / "genres" / genre / f"{stem}{ext}")
    return root


def test_gtzan_layout_fault_filtered_split_and_folds(tmp_path: Path) -> None:
    stems = ["blues.00000", "blues.00012", "blues.00029", "blues.00030", "classical.00000", "classical.00011",
             "classical.00030", "classical.00042", "jazz.00054", "jazz.00000", "jazz.00073", "jazz.00002"]  # fmt: skip
    root = write_gtzan(tmp_path, stems)
    audio(root / "genres" / "rock" / "rock.00000.au")
    audio(root / "genres" / "rock" / "rock.00000.mp3")  # same stem twice: one clip
    (root / "genres" / "rock" / "README.txt").write_text("not audio")
    ds = load_dataset("gtzan", root, folds=2)
    ids = {c.id: c for c in ds.clips}
    assert "jazz.00054" not in ids and "classical.00042" not in ids
    reasons = dict(ds.skipped)
    assert "unreadable" in reasons["jazz.00054"] and "fault-filtered" in reasons["classical.00042"]
    assert ids["blues.00000"].split == "val" and ids["blues.00012"].split == "test"
    assert ids["blues.00029"].split == "train" and ids["rock.00000"].path.suffix == ".au"
    assert ds.tasks["genre"].labels == ("blues", "classical", "jazz", "rock")
    assert Counter(c.fold for c in ds.clips) == {0: 6, 1: 5} or Counter(c.fold for c in ds.clips) == {
        0: 5,
        1: 6,
    }
    unfiltered = load_dataset("gtzan", root / "genres", filtered=False, folds=0)  # the genres folder itself
    assert "classical.00042" in {c.id for c in unfiltered.clips}
    assert all(c.split is None and c.fold is None for c in unfiltered.clips)


def test_gtzan_fault_filtered_lists() -> None:
    split = gtzan_fault_filtered()
    assert Counter(split.values()) == {"train": 443, "val": 197, "test": 290}
    assert len(GTZAN_EXCLUDED) == 70 and not GTZAN_EXCLUDED & set(split)
    assert "jazz.00054" in GTZAN_UNREADABLE and split["jazz.00054"] == "train"


# -- WebAPI -------------------------------------------------------------------------------


def write_webapi(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "artists.csv").write_text(
        "artist_id,name,genres,related,latitude,longitude,origin\n"
        'a1,Phish,jam band|rock,a2,44.48,-73.21,"Burlington, VT"\n'
        "a2,Tea Leaf Green,jam band,a1|a3,37.77,-122.42,San Francisco\n"
        "a3,Ravi Shankar,hindustani classical,,25.32,82.97,Varanasi\n"
    )
    (root / "albums.csv").write_text("album_id,artist_id,title,year,art\nb1,a1,Junta,1988,art/b1.jpg\n"
                                     "b2,a2,Taught to Be Proud,2005,\nb3,a3,Ragas,1956,\n")  # fmt: skip
    (root / "tracks.csv").write_text(
        "track_id,artist_id,album_id,title,audio,lyrics,split\n"
        "t1,a1,b1,Fee,audio/t1.mp3,lyrics/t1.txt,train\n"
        "t2,a2,b2,Slide,audio/t2.mp3,,validation\n"
        "t3,a3,b3,Raga,audio/t3.mp3,,test\n"
        "t4,a1,b1,You Enjoy Myself,audio/missing.mp3,,train\n"
    )
    for t in ("t1", "t2", "t3"):
        audio(root / "audio" / f"{t}.mp3")
    return root


def test_webapi_files(tmp_path: Path) -> None:
    ds = load_dataset("webapi", write_webapi(tmp_path / "webapi"))
    ids = {c.id: c for c in ds.clips}
    assert set(ids) == {"t1", "t2", "t3"} and dict(ds.skipped)["t4"].startswith("no audio file")
    t1 = ids["t1"]
    assert t1.artist == "a1" and t1.split == "train" and ids["t2"].split == "val"
    assert t1.labels == {"genres": ("jam band", "rock"), "decade": ("1980s",)}
    assert t1.extra["related"] == ("a2",) and t1.extra["latitude"] == pytest.approx(44.48)
    assert t1.extra["origin"] == "Burlington, VT" and t1.extra["year"] == 1988
    assert ds.tasks["genres"].multilabel and ds.tasks["decade"].labels == ("1950s", "1980s", "2000s")
    assert ds.resolve_task("genre") == "genres"
    assert load_dataset("webapi", tmp_path / "webapi", min_count=2).tasks["genres"].labels == ("jam band",)


def test_webapi_rejects_a_track_of_an_unknown_artist(tmp_path: Path) -> None:
    root = write_webapi(tmp_path)
    with (root / "tracks.csv").open("a") as fh:
        fh.write("t9,zz,b1,X,audio/t1.mp3,,\n")
    with pytest.raises(DatasetError, match="unknown artist"):
        load_dataset("webapi", root)


# -- Emotify and 4Q -----------------------------------------------------------------------

EMOTIONS = "amazement, solemnity, tenderness, nostalgia, calmness, power, joyful_activation, tension, sadness"


def write_emotify(root: Path, *, labels_csv: bool) -> Path:
    rows = {  # track id: (genre, listeners' 0/1 ticks of the nine emotions)
        1: ("classical", [[0, 1, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0, 0]]),
        101: ("rock", [[0, 0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0, 1, 0]]),
        203: ("electronic", [[0, 0, 0, 0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 1, 0, 0]]),
        302: ("pop", [[0, 0, 1, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 1]]),
    }
    root.mkdir(parents=True)
    lines = [f"track id, genre, {EMOTIONS}, mood, liked, disliked, age, gender, mother tongue"]
    for tid, (genre, ticks) in rows.items():
        lines += [f"{tid},{genre}," + ",".join(map(str, t)) + ",3,1,0,30,1,English" for t in ticks]
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    offsets = {"classical": 0, "rock": 100, "electronic": 200, "pop": 300}
    for tid, (genre, _) in rows.items():
        if tid != 302:  # one clip without audio
            audio(root / "emotifymusic" / genre / f"{tid - offsets[genre]}.mp3")
    if labels_csv:
        (root / "LABELS.csv").write_text(
            "track_id,genre,path,n_annotations,top_emotion,artist,title,album\n"
            "1,classical,emotifymusic/classical/1.mp3,2,calmness,Voices of Music,Largo,Bach\n"
            "101,rock,emotifymusic/rock/1.mp3,2,power,Rock Band,Song,Rocks\n"
            "203,electronic,emotifymusic/electronic/3.mp3,2,joyful_activation,DJ,Track,Beats\n"
        )
    return root


def test_emotify_genres_and_gems_emotions(tmp_path: Path) -> None:
    ds = load_dataset("emotify", write_emotify(tmp_path / "e", labels_csv=True))
    ids = {c.id: c for c in ds.clips}
    assert set(ids) == {"1", "101", "203"} and "302" in dict(ds.skipped)
    assert ids["1"].labels["genre"] == ("classical",) and ids["1"].labels["mood"] == ("calmness",)
    assert ids["203"].labels["mood"] == ("joyful activation",) and ids["1"].artist == "Voices of Music"
    assert ids["1"].labels["moods"] == (
        "solemnity",
        "nostalgia",
        "calmness",
    )  # >= 0.3 of listeners, GEMS order
    assert ids["101"].extra["means"]["power"] == 1.0 and ids["101"].extra["listeners"] == 2
    assert (
        ds.tasks["genre"].kind == "genre" and ds.tasks["mood"].kind == "mood" and ds.tasks["moods"].multilabel
    )
    strict = load_dataset("emotify", tmp_path / "e", threshold=1.0)
    assert {c.id: c.labels.get("moods") for c in strict.clips}["1"] == ("calmness",)


def test_emotify_without_labels_csv_uses_data_csv_alone(tmp_path: Path) -> None:
    ds = load_dataset("emotify", write_emotify(tmp_path / "e", labels_csv=False))
    ids = {c.id: c for c in ds.clips}
    assert ids["1"].labels["mood"] == ("calmness",) and ids["101"].labels["mood"] == ("power",)
    assert all(c.artist is None for c in ds.clips)


def write_fourq(root: Path) -> Path:
    base = root / "MER_audio_taffc_dataset"
    base.mkdir(parents=True)
    header = ('"Song","Artist","Title","Quadrant","PQuad","MoodsTotal","Moods","MoodsFoundStr","MoodsStr",'
              '"MoodsStrSplit","Genres","GenresStr","Sample","SampleURL"')  # fmt: skip
    rows = [
        ("MT01", "Gipsy Kings", "Flamencos", "Q1", "Cathartic; Fiery", "International; Jazz"),
        ("MT02", "Dismember", "Reborn", "Q2", "Negative; Nervous/Jittery", "Pop/Rock"),
        ("MT03", "Charlie Poole", "Bulldog", "Q3", "Circular; Messy", "Country"),
        ("MT04", "", "Elan", "Q4", "Calm; Fiery", "Jazz"),
        ("MT05", "Nobody", "Gone", "Q4", "Calm", "Jazz"),  # no audio
    ]
    lines = [header] + [f'"{s}","{a}","{t}","{q}",0.75,2,2,"x","{m}","{m}",1,"{g}",1,"http://x"'
                        for s, a, t, q, m, g in rows]  # fmt: skip
    (base / "panda_dataset_taffc_metadata.csv").write_text("\n".join(lines) + "\n")
    (base / "panda_dataset_taffc_annotations.csv").write_text(
        "Song,Quadrant\n" + "".join(f"{r[0]},{r[3]}\n" for r in rows)
    )
    for s, _, _, q, _, _ in rows[:4]:
        audio(base / q / f"{s}.mp3")
    return root


def test_fourq_quadrants_moods_and_allmusic_tags(tmp_path: Path) -> None:
    root = write_fourq(tmp_path / "4q")
    for where in (root, root / "MER_audio_taffc_dataset"):
        ds = load_dataset("4q", where)
        ids = {c.id: c for c in ds.clips}
        assert set(ids) == {"MT01", "MT02", "MT03", "MT04"} and "MT05" in dict(ds.skipped)
    assert ids["MT02"].labels["quadrant"] == ("Q2",) and ids["MT02"].labels["mood"] == ("tense",)
    assert [ids[s].labels["mood"][0] for s in ("MT01", "MT03", "MT04")] == ["happy", "sad", "calm"]
    assert ids["MT02"].labels["moods"] == ("Negative", "Nervous/Jittery")
    assert ids["MT01"].labels["genres"] == ("International", "Jazz") and ids["MT04"].artist is None
    assert ds.tasks["mood"].kind == "mood" and ds.tasks["quadrant"].labels == ("Q1", "Q2", "Q3", "Q4")
    assert load_dataset("4q", root, min_count=2).tasks["moods"].labels == ("Fiery",)


# -- library ------------------------------------------------------------------------------


def test_library_rows_and_csv(tmp_path: Path) -> None:
    files = [audio(tmp_path / "music" / f"{i}.wav") for i in range(5)]
    rows = [
        {"path": files[0], "artist": "A", "genres": ["Jazz", "Cool Jazz"], "mood": "Calm; Sad", "id": 10},
        {"path": files[1], "artist": "A", "genres": "Jazz", "mood": "Calm"},
        {"path": files[2], "artist": "B", "genres": "Rock|Jazz", "mood": ""},
        {"path": files[3], "artist": "C", "genres": "Polka", "mood": "Happy"},
        {"path": tmp_path / "gone.mp3", "artist": "D", "genres": "Jazz"},
    ]
    ds = load_dataset("library", None, rows=rows)
    ids = {c.id: c for c in ds.clips}
    assert set(ids) == {"10", "1", "2", "3"} and dict(ds.skipped)["4"].startswith("no audio file")
    assert ids["10"].labels == {
        "genre": ("Jazz",),
        "genres": ("Jazz",),
        "mood": ("Calm",),
        "moods": ("Calm",),
    }
    assert "genre" not in ids["2"].labels and ids["2"].labels["genres"] == ("Jazz",)  # Rock is seen once
    assert ds.tasks["genre"].labels == ("Jazz",) and "Polka" not in ds.tasks["genres"].labels
    with (tmp_path / "library.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist", "genres", "mood"])
        for i in range(4):
            w.writerow([f"music/{i}.wav", "A" if i < 2 else "B", "Jazz" if i % 2 else "Rock", ""])
    from_csv = load_dataset("library", tmp_path, min_count=1)
    assert len(from_csv.clips) == 4 and from_csv.clips[0].path == files[0]


# -- registry and splits -------------------------------------------------------------------


def test_every_dataset_is_registered_through_the_hook() -> None:
    names = Plugins(entry_points=False).registry("dataset").names()
    assert names == ["fma", "gtzan", "webapi", "emotify", "4q", "mirex", "mcbr-tags", "library"]


def test_grouped_folds_keep_artists_together_and_stratify() -> None:
    rng = np.random.default_rng(0)
    artists = [f"artist {i % 40}" for i in range(400)]
    labels = np.array([i % 40 % 4 for i in range(400)])  # each artist plays one of 4 genres
    onehot = np.eye(4)[labels]
    folds = grouped_folds(
        [group_key(a, str(i)) for i, a in enumerate(artists)], onehot, 5, seed=rng.integers(9)
    )
    for a in set(artists):
        assert len({folds[i] for i in range(400) if artists[i] == a}) == 1
    assert Counter(folds) == dict.fromkeys(range(5), 80)
    for f in range(5):
        assert Counter(labels[folds == f]) == dict.fromkeys(range(4), 20)
    with pytest.raises(ConfigError, match="only 3 artist group"):
        grouped_folds(["a", "b", "c", "a"], np.eye(2)[[0, 1, 0, 1]], 4)


def test_holdout_split_is_artist_disjoint_and_seeded() -> None:
    groups = [f"g{i // 3}" for i in range(300)]
    targets = np.eye(3)[[i // 3 % 3 for i in range(300)]]
    parts = holdout_split(groups, targets, val_fraction=0.1, test_fraction=0.2, seed=1)
    sizes = Counter(parts)
    assert abs(sizes["train"] - 210) <= 3 and abs(sizes["val"] - 30) <= 3 and abs(sizes["test"] - 60) <= 3
    assert all(len(set(parts[i : i + 3])) == 1 for i in range(0, 300, 3))
    assert (holdout_split(groups, targets, val_fraction=0.1, test_fraction=0.2, seed=1) == parts).all()
    assert group_key("  The  Band ", "x") == group_key("the band", "y") and group_key(None, "x") == "clip:x"


# -- the real data, when ../shared/data is there ------------------------------------------------


def shared_data() -> Path | None:
    path = (
        Path(os.environ["MCBR_SHARED"]) / "data"
        if os.environ.get("MCBR_SHARED")
        else ROOT.parent / "shared" / "data"
    )
    return path if path.is_dir() else None


@pytest.mark.skipif(shared_data() is None, reason="../shared/data is not present")
def test_real_layouts_in_shared_data() -> None:
    data = shared_data()
    assert data is not None
    if (data / "emotify" / "data.csv").is_file():
        ds = load_dataset("emotify", data / "emotify")
        assert (
            len(ds.clips) == 307 and len(ds.tasks["genre"].labels) == 4 and len(ds.tasks["mood"].labels) == 9
        )
        assert all(c.artist for c in ds.clips)
    if (data / "4q" / "MER_audio_taffc_dataset").is_dir():
        ds = load_dataset("4q", data / "4q")
        assert len(ds.clips) == 704 and ds.tasks["mood"].labels == ("calm", "happy", "sad", "tense")
        assert Counter(c.labels["quadrant"][0] for c in ds.clips)["Q1"] == 177
    if (data / "gtzan" / "genres").is_dir():
        ds = load_dataset("gtzan", data / "gtzan")
        assert {c.labels["genre"][0] for c in ds.clips} <= {"classical", "country"}
        assert all(c.split in ("train", "val", "test") for c in ds.clips)
    if (data / "fma_metadata").is_dir() and not (data / "fma_metadata" / "tracks.csv").exists():
        with pytest.raises(DatasetError, match="no tracks.csv"):
            load_dataset("fma", data)
