"""Nearest-neighbour indexes over the embedding store.

An index is a read-only snapshot of one model's embeddings. Annoy cannot add
items after ``build()``, so the index is rebuilt from the store whenever the
store's generation has moved on (once per command, not per item).

Files for an index at ``PATH`` (e.g. ``mcbr-msd-musicnn-1``):

``PATH.ann``       the Annoy forest (memory-mapped on load)
``PATH.ids.npy``   dense position -> beets item id (int64, no pickle)
``PATH.json``      metadata: backend, dim, metric, n_trees, seed, model id,
                   store generation, item count and the sizes of the two files above

Every file is written to a temporary name and renamed into place, metadata last;
a reader checks the sizes it records, so a half-replaced set reads as stale and
is rebuilt, never misread.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mcbr_core.errors import ConfigError, IndexMismatchError
from mcbr_core.hookspecs import Register, hookimpl

METRICS = ("angular", "euclidean", "dot")


@dataclass(frozen=True)
class IndexMeta:
    """What an index was built from; checked on every load."""

    backend: str
    dim: int
    metric: str
    model_id: str
    generation: int
    n_items: int
    params: dict[str, Any]
    sizes: dict[str, int]


@runtime_checkable
class IndexBackend(Protocol):
    """A nearest-neighbour index over item embeddings.

    ``meta`` is ``None`` until ``build`` or a successful ``load``.
    """

    name: str
    meta: IndexMeta | None

    def build(self, ids: np.ndarray, vectors: np.ndarray, *, generation: int) -> None:
        """Build from ``ids`` ``(N,)`` and ``vectors`` ``(N, D)`` and write it atomically."""
        ...

    def load(self) -> IndexMeta | None:
        """Open the files; ``None`` if missing or half-written. Raises ``IndexMismatchError`` on a mismatch."""
        ...

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` nearest items to ``vector`` ``(D,)``: ids ``(n,)`` and distances ``(n,)``, nearest first."""
        ...


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def _write_array(path: Path, array: np.ndarray) -> int:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    size = tmp.stat().st_size
    _replace(tmp, path)
    return size


class _FileIndex:
    """Shared file handling: metadata, id map and validation."""

    name = "base"

    def __init__(self, *, path: Path, dim: int, metric: str, model_id: str, options: dict[str, Any]) -> None:
        if metric not in METRICS:
            raise ConfigError(f"index metric must be one of {METRICS}, got {metric!r}")
        self.path = Path(path)
        self.dim = int(dim)
        self.metric = metric
        self.model_id = model_id
        self.options = dict(options)
        self.meta: IndexMeta | None = None
        self.ids = np.zeros(0, dtype=np.int64)

    def _file(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def params(self) -> dict[str, Any]:
        return {}

    def _clean_temp(self) -> None:
        """Remove temporary files left by a writer that died (its pid is gone)."""
        for tmp in self.path.parent.glob(self.path.name + ".*.tmp*"):
            pid = tmp.name.rsplit(".tmp", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)

    def _write_meta(self, meta: IndexMeta) -> None:
        final = self._file(".json")
        tmp = final.with_name(final.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(meta), indent=1, sort_keys=True))
        _replace(tmp, final)
        self.meta = meta

    def _read_meta(self, data_suffixes: tuple[str, ...]) -> IndexMeta | None:
        try:
            raw = json.loads(self._file(".json").read_text())
            meta = IndexMeta(**raw)
        except (OSError, ValueError, TypeError):
            return None
        for suffix in data_suffixes:
            try:
                if self._file(suffix).stat().st_size != meta.sizes.get(suffix):
                    return None  # a file was replaced after this metadata: treat as stale
            except OSError:
                return None
        want = {"backend": self.name, "dim": self.dim, "metric": self.metric, "model_id": self.model_id}
        got = {"backend": meta.backend, "dim": meta.dim, "metric": meta.metric, "model_id": meta.model_id}
        if want != got:
            raise IndexMismatchError(
                f"{self._file('.json')}: index built for {got}, but the current setup is {want}; "
                "it will be rebuilt from the store (run `beet mcbr` first if the model changed)"
            )
        return meta


class AnnoyIndexBackend(_FileIndex):
    """Annoy forest (``index: annoy``): memory-mapped, fast, approximate.

    Options: ``n_trees`` (default 16), ``search_k`` (default 3000; -1: Annoy's ``n_trees * n``), ``seed`` (42).
    """

    name = "annoy"

    def params(self) -> dict[str, Any]:
        return {
            "n_trees": int(self.options.get("n_trees", 16)),
            "search_k": int(self.options.get("search_k", 3000)),
            "seed": int(self.options.get("seed", 42)),
        }

    def _new(self):
        from annoy import AnnoyIndex

        return AnnoyIndex(self.dim, self.metric)

    def build(self, ids: np.ndarray, vectors: np.ndarray, *, generation: int) -> None:
        if vectors.size and vectors.shape[1] != self.dim:
            raise IndexMismatchError(f"index is {self.dim}-d, vectors are {vectors.shape[1]}-d")
        self._clean_temp()
        p = self.params()
        ann = self._new()
        ann.set_seed(p["seed"])
        for pos, vec in enumerate(vectors):
            ann.add_item(pos, vec.tolist())
        ann.build(p["n_trees"], n_jobs=-1)
        final = self._file(".ann")
        tmp = final.with_name(final.name + f".tmp{os.getpid()}")
        ann.save(str(tmp))
        ann.unload()
        sizes = {
            ".ids.npy": _write_array(self._file(".ids.npy"), ids.astype(np.int64)),
            ".ann": tmp.stat().st_size,
        }
        _replace(tmp, final)
        self._write_meta(
            IndexMeta(self.name, self.dim, self.metric, self.model_id, generation, len(ids), p, sizes)
        )
        self._ann = None

    def load(self) -> IndexMeta | None:
        meta = self._read_meta((".ann", ".ids.npy"))
        if meta is None:
            return None
        self.ids = np.load(self._file(".ids.npy"), allow_pickle=False)
        self._ann = self._new()
        if meta.n_items:
            self._ann.load(str(self._file(".ann")))
        self.meta = meta
        return meta

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.meta is None or self.meta.n_items == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        pos, dist = self._ann.get_nns_by_vector(
            np.asarray(vector, dtype=np.float32).tolist(),
            n,
            search_k=self.params()["search_k"],
            include_distances=True,
        )
        return self.ids[np.asarray(pos, dtype=np.int64)], np.asarray(dist, dtype=np.float32)


class ExactIndexBackend(_FileIndex):
    """Brute-force search (``index: exact``): exact, for small libraries and as a reference."""

    name = "exact"

    def build(self, ids: np.ndarray, vectors: np.ndarray, *, generation: int) -> None:
        self._clean_temp()
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)  # (N, D)
        sizes = {
            ".ids.npy": _write_array(self._file(".ids.npy"), ids.astype(np.int64)),
            ".vec.npy": _write_array(self._file(".vec.npy"), vecs),
        }
        self._write_meta(
            IndexMeta(self.name, self.dim, self.metric, self.model_id, generation, len(ids), {}, sizes)
        )

    def load(self) -> IndexMeta | None:
        meta = self._read_meta((".ids.npy", ".vec.npy"))
        if meta is None:
            return None
        self.ids = np.load(self._file(".ids.npy"), allow_pickle=False)
        self._vecs = np.load(self._file(".vec.npy"), allow_pickle=False, mmap_mode="r")
        self.meta = meta
        return meta

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.meta is None or self.meta.n_items == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        dist = distances(np.asarray(self._vecs), np.asarray(vector, dtype=np.float32), self.metric)  # (N,)
        order = np.argsort(dist, kind="stable")[:n]
        return self.ids[order], dist[order]


def distances(vectors: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Distances of ``vectors`` ``(N, D)`` to ``query`` ``(D,)``, in Annoy's conventions.

    ``angular`` is ``sqrt(2 - 2 cos)``, ``euclidean`` the L2 distance, ``dot`` the
    negated inner product.
    """
    from mcbr_core.vectors import distances as measure

    return measure(vectors, query, metric).astype(np.float32)


def annoy_backend(
    *, path: Path, dim: int, metric: str, model_id: str, options: dict[str, Any]
) -> AnnoyIndexBackend:
    """Factory registered as ``annoy``."""
    return AnnoyIndexBackend(path=path, dim=dim, metric=metric, model_id=model_id, options=options)


def exact_backend(
    *, path: Path, dim: int, metric: str, model_id: str, options: dict[str, Any]
) -> ExactIndexBackend:
    """Factory registered as ``exact``."""
    return ExactIndexBackend(path=path, dim=dim, metric=metric, model_id=model_id, options=options)


@hookimpl
def register_index_backends(register: Register) -> None:
    """Register the built-in index backends."""
    register("annoy", annoy_backend)
    register("exact", exact_backend)
