"""mcbr_core.api: id forms, parameters, result shapes and the live index, without HTTP or beets."""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.api import ApiError
from mcbr_core.api.ids import (
    BEETS,
    RECORDING,
    RELEASE_TRACK,
    SUBSONIC,
    b64encode,
    mint,
    parse_album_ref,
    parse_track_ref,
    subsonic_path_hash,
)
from mcbr_core.api.live import LiveIndex
from mcbr_core.api.results import (
    audiomuse_distance,
    audiomuse_json,
    cap_per_artist,
    parse_count,
    parse_flag,
    relative_path,
    similarity,
    step_distances,
    track_json,
)
from mcbr_core.settings import IndexSettings
from mcbr_core.similarity import Neighbours
from mcbr_core.store.embeddings import EmbeddingStore

TRACK = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
RECORDING_ID = "2d0a9e9b-5d0b-4c3c-9a8e-2d4f2c1b8f10"


def bsn_decode(payload: str) -> str:
    """BeetstreamNext's own decoding of an ``sg-m-`` payload (``IDs.decode_song``)."""
    return base64.urlsafe_b64decode(payload + "=" * ((4 - len(payload) % 4) % 4)).decode("utf-8")


# -- ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value", "scheme"),
    [
        ("123", "id", 123, BEETS),
        (" 7 ", "id", 7, BEETS),
        (TRACK, "mbid", TRACK, None),
        (TRACK.upper(), "mbid", TRACK, None),
        ("sg-m-" + b64encode(TRACK), "mbid", TRACK, SUBSONIC),
        (
            "sg-m-" + b64encode("deezer:12345"),
            "mbid",
            "deezer:12345",
            SUBSONIC,
        ),  # beets keeps other sources' ids there
        ("sg-h-0123456789ABCDEF", "hash", "0123456789abcdef", SUBSONIC),
        ("sg-42", "id", 42, SUBSONIC),
    ],
)
def test_track_id_forms(text: str, kind: str, value: object, scheme: str | None) -> None:
    ref = parse_track_ref(text)
    assert (ref.kind, ref.value, ref.scheme) == (kind, value, scheme)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "missing parameter 'id'"),
        ("   ", "empty parameter"),
        ("0", "start at 1"),
        (str(2**63), "start at 1"),
        ("abc", "not a track id"),
        ("12ab", "not a track id"),
        ("sg-", "not a track id"),
        ("sg-x1", "not a track id"),
        ("sg-m-", "does not decode"),
        ("sg-m-***", "does not decode"),
        ("sg-m-" + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), "does not decode"),
        ("sg-h-", "hex hash"),
        ("sg-h-nothex", "hex hash"),
        ("x" * 201, "longer than 200"),
        ("١٢٣", "not a track id"),  # Arabic-Indic digits are digits to str.isdigit
    ],
)
def test_malformed_track_ids_are_400(text: str | None, says: str) -> None:
    with pytest.raises(ApiError, match=says) as info:
        parse_track_ref(text)
    assert info.value.status == 400


def test_sg_m_payload_is_what_beetstreamnext_decodes() -> None:
    for mbid in (TRACK, "a", "ab", "abc", "deezer:1"):  # every padding length
        payload = b64encode(mbid)
        assert "=" not in payload and bsn_decode(payload) == mbid
        assert parse_track_ref("sg-m-" + payload).value == mbid


def test_subsonic_path_hash_is_beetstreamnexts() -> None:
    # BeetstreamNext: sha1 of the path relative to beets' `directory`, as configured, 16 hex digits
    assert subsonic_path_hash("/music/A/b.flac", "/music") == hashlib.sha1(b"A/b.flac").hexdigest()[:16]
    assert subsonic_path_hash("/music/A/b.flac", "/music/") == hashlib.sha1(b"A/b.flac").hexdigest()[:16]
    # outside the root, or a root written with ~ (not expanded): the whole path
    whole = hashlib.sha1(b"/elsewhere/b.flac").hexdigest()[:16]
    assert subsonic_path_hash("/elsewhere/b.flac", "/music") == whole
    assert (
        subsonic_path_hash("/home/u/Music/b.flac", "~/Music")
        == hashlib.sha1(b"/home/u/Music/b.flac").hexdigest()[:16]
    )
    assert subsonic_path_hash("", "/music") == ""


def test_mint_in_each_scheme() -> None:
    both = {"id": 5, "mb_trackid": RECORDING_ID, "mb_releasetrackid": TRACK, "path": "/music/A/b.flac"}
    recording_only = {"id": 6, "mb_trackid": RECORDING_ID, "mb_releasetrackid": "", "path": "/music/A/c.flac"}
    bare = {"id": 7, "mb_trackid": None, "mb_releasetrackid": "", "path": "/music/A/d.flac"}
    pathless = {"id": 8, "path": ""}
    assert [mint(BEETS, f) for f in (both, bare)] == ["5", "7"]
    assert [mint(RECORDING, f) for f in (both, recording_only, bare)] == [RECORDING_ID, RECORDING_ID, "7"]
    assert [mint(RELEASE_TRACK, f) for f in (both, recording_only, bare)] == [TRACK, RECORDING_ID, "7"]
    assert mint(SUBSONIC, both, root="/music") == "sg-m-" + b64encode(TRACK)
    assert mint(SUBSONIC, recording_only, root="/music") == "sg-m-" + b64encode(RECORDING_ID)
    assert mint(SUBSONIC, bare, root="/music") == "sg-h-" + hashlib.sha1(b"A/d.flac").hexdigest()[:16]
    assert mint(SUBSONIC, pathless, root="/music") == "sg-8"
    with pytest.raises(ValueError, match="unknown id scheme"):
        mint("spotify", both)


def test_minted_ids_parse_back() -> None:
    fields = {"id": 9, "mb_trackid": RECORDING_ID, "mb_releasetrackid": TRACK, "path": "/m/x.mp3"}
    for scheme in (BEETS, RECORDING, RELEASE_TRACK, SUBSONIC):
        ref = parse_track_ref(mint(scheme, fields, root="/m"))
        assert ref.value in (9, TRACK, RECORDING_ID)


def test_album_ids() -> None:
    assert parse_album_ref("12") == ("id", 12)
    assert parse_album_ref(TRACK.upper()) == ("mbid", TRACK)
    for bad, says in (("", "missing parameter"), ("al-12", "not an album id"), ("1" * 25, "not an album id")):
        with pytest.raises(ApiError, match=says):
            parse_album_ref(bad)


# -- parameters --------------------------------------------------------------------------


def test_counts() -> None:
    assert parse_count(None, name="n", default=10) == 10
    assert parse_count(" ", name="n", default=10) == 10
    assert parse_count("25", name="n", default=10) == 25
    assert parse_count("0", name="n", default=10, low=0) == 0
    for bad, says in (("0", "between 1 and 1000"), ("1001", "between 1 and 1000"), ("-3", "between"),
                      ("2.5", "whole number"), ("ten", "whole number"), ("9" * 40, "whole number")):  # fmt: skip
        with pytest.raises(ApiError, match=says):
            parse_count(bad, name="n", default=10)


def test_flags() -> None:
    assert [parse_flag(v, name="f") for v in ("true", "False", "1", "no", "", None)] == [
        True, False, True, False, None, None,
    ]  # fmt: skip
    with pytest.raises(ApiError, match="true or false"):
        parse_flag("maybe", name="f")


# -- distances and shapes ----------------------------------------------------------------------


def test_similarity_of_the_angular_distance() -> None:
    assert similarity(0.0, "angular") == 1.0
    assert similarity(2.0, "angular") == 0.0
    assert similarity(math.sqrt(2), "angular") == pytest.approx(1 - math.sqrt(2) / 2, abs=1e-6)  # orthogonal
    assert similarity(2.5, "angular") == 0.0  # clipped
    values = [similarity(d, "angular") for d in np.linspace(0, 2, 21)]
    assert values == sorted(values, reverse=True)
    assert similarity(0.0, "euclidean") == 1.0 and similarity(1.0, "euclidean") == 0.5
    assert 0.0 <= similarity(7.0, "euclidean") <= 1.0 and similarity(float("nan"), "angular") == 0.0
    assert similarity(-1.0, "dot") == 1.0 and similarity(1.0, "dot") == 0.0


def test_audiomuse_distance_is_the_cosine_distance() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 16))
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    d = float(np.sqrt(2 - 2 * a @ b))  # what the angular index reports
    assert audiomuse_distance(d, "angular") == pytest.approx(1 - a @ b, abs=1e-6)
    assert audiomuse_distance(0.3, "euclidean") == 0.3


def test_step_distances() -> None:
    vecs = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    assert step_distances(vecs, "angular") == pytest.approx([math.sqrt(2), 2.0])
    assert step_distances(vecs, "euclidean") == pytest.approx([math.sqrt(5), 3.0])
    assert step_distances(vecs[:1], "angular").shape == (0,)


@pytest.mark.parametrize(
    ("path", "directory", "rel"),
    [
        ("/music/A/b.flac", "/music", "A/b.flac"),
        ("/music/A/b.flac", "/music/", "A/b.flac"),
        ("/musicals/b.flac", "/music", None),
        ("/music/../etc/passwd", "/music", None),
        ("/music/A/../../etc/passwd", "/music", None),
        ("/etc/passwd", "/", None),
        ("/music", "/music", None),
        ("", "/music", None),
        ("C:\\Music\\A\\b.flac", "C:\\Music", "A/b.flac"),
    ],
)
def test_paths_show_only_inside_the_library(path: str, directory: str, rel: str | None) -> None:
    assert relative_path(path, directory) == rel


def test_track_json() -> None:
    fields = {
        "id": 3, "title": "T", "artist": "A", "genres": ["Jazz", "Soul"], "mood": "Sad; Calm", "length": 1.5,
        "mb_trackid": b"\x00bytes", "year": float("nan"), "path": "/music/A/t.flac",
    }  # fmt: skip
    out = track_json(fields, ref="sg-3", distance=0.5, metric="angular", directory="/music")
    assert out["ref"] == "sg-3" and out["genres"] == ["Jazz", "Soul"] and out["mood"] == ["Sad", "Calm"]
    assert out["mb_trackid"] is None and out["year"] is None  # no bytes, no NaN in JSON
    assert out["path"] == "A/t.flac" and (out["distance"], out["similarity"]) == (0.5, 0.75)
    outside = track_json(
        {**fields, "path": "/tmp/t.flac"}, ref="3", distance=None, metric="angular", directory="/music"
    )
    assert "path" not in outside and "similarity" not in outside


def test_audiomuse_json() -> None:
    out = audiomuse_json(
        {"title": "T", "artist": "A", "path": "/x"}, item_id="7", distance=0.2, metric="angular"
    )
    assert out == {"item_id": "7", "title": "T", "author": "A", "album": "unknown", "album_artist": "unknown",
                   "distance": 0.02}  # fmt: skip


def test_cap_per_artist() -> None:
    artists = {1: "A", 2: "a ", 3: "B", 4: "", 5: "", 6: "A"}
    assert cap_per_artist([1, 2, 3, 4, 5, 6], artists, 1) == [1, 3, 4, 5]
    assert cap_per_artist([1, 2, 3, 6], artists, 2) == [1, 2, 3]
    assert cap_per_artist([1, 2, 6], artists, 0) == [1, 2, 6]


# -- the live index ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> EmbeddingStore:
    s = EmbeddingStore(tmp_path / "store.db")
    rng = np.random.default_rng(0)
    s.put_many(np.arange(1, 41), rng.normal(size=(40, 8)), model_id="m", feature_version="1")
    yield s
    s.close()


def neighbours(store: EmbeddingStore, folder: Path) -> Neighbours:
    return Neighbours(store, model_id="m", folder=folder, settings=IndexSettings(backend="exact"))


def test_a_rebuild_by_another_process_is_swapped_in(store: EmbeddingStore, tmp_path: Path) -> None:
    clock = Clock()
    served = neighbours(store, tmp_path / "idx")
    live = LiveIndex(served, private=tmp_path / "own", quiet=30.0, poll=1.0, clock=clock)
    live.start()
    assert live.generation == store.generation("m")
    with EmbeddingStore(tmp_path / "store.db") as other:  # another process's connection
        other.put(99, np.full(8, 5.0), model_id="m", feature_version="1")
        live.refresh()  # the files are behind: the old index keeps answering
        assert live.generation < other.generation("m") and 99 not in [r.key for r in served.similar([1], 40)]
        neighbours(other, tmp_path / "idx").index(rebuild=True)  # its `cli_exit`
    live.refresh()  # read at most once per poll second
    assert live.swaps == 0
    clock.now += 1.5
    live.refresh()
    assert live.swaps == 1 and live.generation == store.generation("m")
    assert 99 in [r.key for r in served.similar([1], 40)]
    assert not (tmp_path / "own").exists()  # nothing built here


def test_stale_files_are_rebuilt_privately_once_the_store_is_quiet(
    store: EmbeddingStore, tmp_path: Path
) -> None:
    clock = Clock()
    served = neighbours(store, tmp_path / "idx")
    live = LiveIndex(served, private=tmp_path / "own", quiet=10.0, poll=1.0, clock=clock)
    live.start()
    shared = sorted(p.name for p in (tmp_path / "idx").iterdir())
    store.put(77, np.full(8, 3.0), model_id="m", feature_version="1")  # a writer that never rebuilds
    clock.now += 2
    live.refresh()
    live.wait()
    assert live.swaps == 0  # the store is still busy
    clock.now += 10
    live.refresh()
    live.wait(10)
    assert live.swaps == 1 and live.generation == store.generation("m")
    assert 77 in [r.key for r in served.similar([1], 40)]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == shared  # the shared files untouched
    live.close()
    assert not (tmp_path / "own").exists()


def test_an_empty_store_serves_nothing(tmp_path: Path) -> None:
    with EmbeddingStore(tmp_path / "empty.db") as empty:
        served = neighbours(empty, tmp_path / "idx")
        live = LiveIndex(served, private=tmp_path / "own", quiet=0.0, poll=0.0)
        live.start()
        live.refresh()
        live.wait(10)
        assert live.generation is None and served.similar([1], 5) == []
        live.close()
