"""Embedding store and ANN indexes: persistence, staleness, atomic files, metadata checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import IndexMismatchError
from mcbr_core.settings import IndexSettings
from mcbr_core.similarity import Neighbours, Recording, index_path
from mcbr_core.store.embeddings import EmbeddingStore
from mcbr_core.store.index import AnnoyIndexBackend, ExactIndexBackend, distances

MODEL = "toy-1"


def clustered(n_per: int = 20, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three planted clusters; ids 1..3n, cluster = (id - 1) // n_per."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, dim)) * 5
    vecs = np.concatenate([c + rng.standard_normal((n_per, dim)) * 0.3 for c in centres]).astype(np.float32)
    return np.arange(1, 3 * n_per + 1), vecs


@pytest.fixture
def store(tmp_path: Path) -> EmbeddingStore:
    s = EmbeddingStore(tmp_path / "mcbr.db")
    ids, vecs = clustered()
    for i, v in zip(ids, vecs, strict=True):
        s.put(int(i), v, model_id=MODEL, feature_version="1", path=f"/m/{i}.mp3".encode(), mtime=1.0)
    yield s
    s.close()


def test_store_round_trip_and_generation(store: EmbeddingStore, tmp_path: Path) -> None:
    ids, vecs = store.vectors(MODEL)
    assert ids.tolist() == list(range(1, 61)) and vecs.shape == (60, 16)
    gen = store.generation(MODEL)
    assert gen == 60
    assert store.row(5, MODEL).path == b"/m/5.mp3"
    assert store.remove([5, 6]) == 2
    assert store.generation(MODEL) == gen + 1
    assert store.get(5, MODEL) is None
    store.set_path(7, b"/new/7.mp3")
    assert store.row(7, MODEL).path == b"/new/7.mp3"
    assert store.generation(MODEL) == gen + 1  # a move does not stale the index
    # persists across connections
    again = EmbeddingStore(tmp_path / "mcbr.db")
    assert again.count(MODEL) == 58
    again.close()


def test_store_refuses_other_dimension_and_nan(store: EmbeddingStore) -> None:
    with pytest.raises(IndexMismatchError, match="16-d"):
        store.put(999, np.zeros(8, dtype=np.float32), model_id=MODEL, feature_version="1")
    with pytest.raises(ValueError, match="not finite"):
        store.put(999, np.full(16, np.nan, dtype=np.float32), model_id=MODEL, feature_version="1")


@pytest.mark.parametrize("backend", ["annoy", "exact"])
def test_neighbours_stay_in_the_planted_cluster(store: EmbeddingStore, tmp_path: Path, backend: str) -> None:
    nb = Neighbours(
        store, model_id=MODEL, folder=tmp_path / "idx", settings=IndexSettings(backend=backend, n_trees=8)
    )
    results = nb.similar([1], 10)
    assert len(results) == 10
    assert 1 not in [r.key for r in results]
    assert all((r.key - 1) // 20 == 0 for r in results)
    assert [r.distance for r in results] == sorted(r.distance for r in results)
    # a query of several items excludes all of them
    results = nb.similar([21, 22, 23], 5)
    assert not {21, 22, 23} & {r.key for r in results}
    assert all((r.key - 1) // 20 == 1 for r in results)


def test_group_mode_ranks_groups_and_skips_the_query_group(store: EmbeddingStore, tmp_path: Path) -> None:
    nb = Neighbours(store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(backend="exact"))
    group = lambda i: (i - 1) // 10  # noqa: E731 - six "albums" of ten tracks
    results = nb.similar([1], 3, group=group, exclude_groups={0})
    assert [r.key for r in results][0] == 1  # the other half of cluster 0 comes first
    assert 0 not in [r.key for r in results]


def test_index_is_rebuilt_only_when_stale(store: EmbeddingStore, tmp_path: Path) -> None:
    nb = Neighbours(store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(n_trees=4))
    assert nb.is_stale()
    nb.index()
    assert not nb.is_stale()
    ann = index_path(tmp_path, MODEL).with_suffix(".ann")
    mtime = ann.stat().st_mtime_ns
    Neighbours(store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(n_trees=4)).index()
    assert ann.stat().st_mtime_ns == mtime
    store.put(100, np.ones(16, dtype=np.float32), model_id=MODEL, feature_version="1")
    assert nb.is_stale()
    fresh = Neighbours(store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(n_trees=4))
    assert fresh.index().meta.n_items == 61
    assert not list(tmp_path.glob("*.tmp*"))  # no temporary files left behind


def test_index_metadata_mismatch_is_refused(tmp_path: Path) -> None:
    ids, vecs = clustered()
    AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="angular", model_id="a", options={}).build(
        ids, vecs, generation=1
    )
    with pytest.raises(IndexMismatchError, match="rebuilt"):
        AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="angular", model_id="b", options={}).load()
    with pytest.raises(IndexMismatchError):
        AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="euclidean", model_id="a", options={}).load()


def test_half_replaced_index_reads_as_missing(tmp_path: Path) -> None:
    ids, vecs = clustered()
    idx = AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="angular", model_id="a", options={})
    idx.build(ids, vecs, generation=1)
    (tmp_path / "i.ann").write_bytes(b"\0" * 10)  # another writer's file without its metadata
    assert (
        AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="angular", model_id="a", options={}).load()
        is None
    )


def test_annoy_matches_exact_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    ids = np.arange(2000)
    ann = AnnoyIndexBackend(
        path=tmp_path / "a", dim=32, metric="angular", model_id="m", options={"n_trees": 32, "search_k": 5000}
    )
    ann.build(ids, vecs, generation=1)
    ann.load()
    exact = ExactIndexBackend(path=tmp_path / "e", dim=32, metric="angular", model_id="m", options={})
    exact.build(ids, vecs, generation=1)
    exact.load()
    recall = []
    for q in vecs[:50]:
        a, da = ann.query(q, 10)
        e, de = exact.query(q, 10)
        recall.append(len(set(a.tolist()) & set(e.tolist())) / 10)
        np.testing.assert_allclose(da[0], de[0], atol=1e-3)
    assert np.mean(recall) >= 0.95


def test_distance_conventions() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(
        distances(v, np.array([2.0, 0.0], dtype=np.float32), "angular"), [0, 2**0.5, 2], atol=1e-6
    )


def _towards(angle: float, axis: int, *, jitter: float = 0.0, dim: int = 16) -> np.ndarray:
    """A vector ``(dim,)`` ``angle`` radians from axis 0 towards ``axis``, nudged ``jitter`` along the last axis."""
    v = np.zeros(dim, dtype=np.float32)
    v[0], v[axis] = np.cos(angle), np.sin(angle)
    v[-1] += jitter  # about ``jitter`` angular distance away from the un-nudged vector
    return v


@pytest.fixture
def copies_store(tmp_path: Path) -> EmbeddingStore:
    """Query item 1 on axis 0; around it copies of recordings, namesakes and plain others.

    Item 1 (query, "q", mbid Q); 2: "q" 0.01 away from 1; 3: mbid Q, 0.3 away; 4: "q" 0.6 away
    (another song of that name). 10..12: "a" in three near-identical copies (11 nearest the
    query). 20, 21: "b", 0.4 apart. 30, 31: "c", near-identical but different mbids. 100..119:
    others, each its own recording, all farther from the query than the above.
    """
    s = EmbeddingStore(tmp_path / "copies.db")
    vecs = {
        1: _towards(0.0, 1),
        2: _towards(0.0, 1, jitter=0.01),
        3: _towards(0.3, 2),
        4: _towards(0.6, 3),
        10: _towards(0.22, 4, jitter=0.004),
        11: _towards(0.20, 4),
        12: _towards(0.21, 4, jitter=-0.004),
        20: _towards(0.25, 5),
        21: _towards(0.35, 6),
        30: _towards(0.27, 7),
        31: _towards(0.28, 7, jitter=0.005),
    }
    for j in range(20):
        vecs[100 + j] = _towards(0.8 + 0.02 * j, 8 + j % 7)
    for item_id, v in vecs.items():
        s.put(item_id, v, model_id=MODEL, feature_version="1")
    yield s
    s.close()


RECORDINGS = {
    1: Recording(id="Q", name=("x", "q")),
    2: Recording(name=("x", "q")),
    3: Recording(id="Q"),
    4: Recording(name=("x", "q")),
    10: Recording(name=("x", "a")),
    11: Recording(name=("x", "a")),
    12: Recording(id="A12", name=("x", "a")),
    20: Recording(name=("x", "b")),
    21: Recording(name=("x", "b")),
    30: Recording(id="C30", name=("x", "c")),
    31: Recording(id="C31", name=("x", "c")),
}


def test_copies_of_a_recording_collapse_to_the_nearest(copies_store: EmbeddingStore, tmp_path: Path) -> None:
    nb = Neighbours(copies_store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(backend="exact"))
    every = [r.key for r in nb.similar([1], 12)]
    assert {2, 3, 10, 11, 12} <= set(every)  # without `same`, every copy is listed
    results = nb.similar([1], 12, same=RECORDINGS.get)
    keys = [r.key for r in results]
    assert 11 in keys and not {10, 12} & set(keys)  # one of "a", its nearest copy
    assert len(keys) == len(set(keys)) == 12  # still n results
    assert [r.distance for r in results] == sorted(r.distance for r in results)


def test_namesakes_far_apart_or_of_other_ids_stay(copies_store: EmbeddingStore, tmp_path: Path) -> None:
    nb = Neighbours(copies_store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(backend="exact"))
    keys = {r.key for r in nb.similar([1], 12, same=RECORDINGS.get)}
    assert {20, 21} <= keys  # same artist and title, embeddings 0.4 apart: a live take, say
    assert {30, 31} <= keys  # near-identical, but MusicBrainz says two recordings
    assert 4 in keys  # the query's title, but another song


def test_copies_of_the_query_recordings_are_excluded(copies_store: EmbeddingStore, tmp_path: Path) -> None:
    nb = Neighbours(copies_store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(backend="exact"))
    keys = [r.key for r in nb.similar([1], 5, same=RECORDINGS.get)]
    assert not {1, 2, 3} & set(keys)  # 2: same name, 0.01 away; 3: same MusicBrainz id
    assert keys[0] == 11 and len(keys) == 5
    # the threshold is the caller's to choose
    keys = [r.key for r in nb.similar([1], 5, same=RECORDINGS.get, same_within=0.001)]
    assert 2 in keys and 3 not in keys


def test_many_copies_still_give_n_results(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path / "many.db")
    rng = np.random.default_rng(3)
    for item_id in range(1, 81):  # 80 copies of one recording right next to the query...
        vec = _towards(0.1, 1, jitter=0.003 * rng.standard_normal())
        store.put(item_id, vec, model_id=MODEL, feature_version="1")
    for item_id in range(81, 91):  # ...and ten others beyond them
        store.put(item_id, _towards(0.5 + 0.01 * item_id, 2), model_id=MODEL, feature_version="1")
    store.put(100, _towards(0.0, 1), model_id=MODEL, feature_version="1")
    nb = Neighbours(store, model_id=MODEL, folder=tmp_path, settings=IndexSettings(backend="exact"))

    def same(item_id: int) -> Recording:
        return Recording(name=("x", "song")) if item_id <= 80 else Recording(id=item_id)

    keys = [r.key for r in nb.similar([100], 5, same=same)]
    assert len(keys) == 5 and sum(k <= 80 for k in keys) == 1
    store.close()


def test_recording_of_tags_normalises_and_needs_something() -> None:
    assert Recording.of(artist="  The  Band ", title="Song\tOne") == Recording(name=("the band", "song one"))
    assert Recording.of(mbid="ABC-1", artist="", title="t") == Recording(id="abc-1")
    assert Recording.of(mbid="", artist="a", title="") is None
