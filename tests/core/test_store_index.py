"""Embedding store and ANN indexes: persistence, staleness, atomic files, metadata checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import IndexMismatchError
from mcbr_core.settings import IndexSettings
from mcbr_core.similarity import Neighbours, index_path
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
    nb = Neighbours(store, model_id=MODEL, folder=tmp_path / "idx", settings=IndexSettings(backend=backend, n_trees=8))
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
    assert AnnoyIndexBackend(path=tmp_path / "i", dim=16, metric="angular", model_id="a", options={}).load() is None


def test_annoy_matches_exact_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    ids = np.arange(2000)
    ann = AnnoyIndexBackend(path=tmp_path / "a", dim=32, metric="angular", model_id="m", options={"n_trees": 32, "search_k": 5000})
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
    np.testing.assert_allclose(distances(v, np.array([2.0, 0.0], dtype=np.float32), "angular"), [0, 2**0.5, 2], atol=1e-6)
