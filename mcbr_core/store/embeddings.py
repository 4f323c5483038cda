"""The embedding store: a sidecar SQLite database keyed by beets item id.

Embeddings do not belong in beets' flexible attributes (those load with every
queried item). This store keeps one row per (item, model) with the vector, the
file's path and mtime at analysis time and the feature version. Every write runs
in a transaction and bumps a per-model *generation* counter, which tells the ANN
index whether it is stale.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcbr_core.errors import IndexMismatchError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    item_id INTEGER NOT NULL,
    model_id TEXT NOT NULL,
    feature_version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    path BLOB,
    mtime REAL,
    updated REAL NOT NULL,
    PRIMARY KEY (item_id, model_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    """What the store knows of one item's embedding (without the vector)."""

    item_id: int
    model_id: str
    feature_version: str
    path: bytes | None
    mtime: float | None


class EmbeddingStore:
    """SQLite store of embeddings.

    Parameters
    ----------
    path
        Database file (created with its folder if missing).
    timeout
        Seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # beets runs import stages in several threads: one connection, serialised by a lock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction():
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        ((schema,),) = self._read("SELECT value FROM meta WHERE key='schema'")
        if schema != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"{self.path}: store schema {schema}, this version reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction; rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _bump(self, model_ids: Iterable[str]) -> None:
        for model_id in set(model_ids):
            self._db.execute(
                "INSERT INTO meta VALUES (?, '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                (f"generation:{model_id}",),
            )

    def generation(self, model_id: str) -> int:
        """Counter bumped by every change to ``model_id``'s embeddings."""
        rows = self._read("SELECT value FROM meta WHERE key=?", (f"generation:{model_id}",))
        return int(rows[0][0]) if rows else 0

    def put(
        self,
        item_id: int,
        vector: np.ndarray,
        *,
        model_id: str,
        feature_version: str,
        path: bytes | None = None,
        mtime: float | None = None,
    ) -> None:
        """Insert or replace one embedding.

        Parameters
        ----------
        item_id
            beets item id.
        vector : np.ndarray [shape=(D,)]
        model_id, feature_version
            What produced it.
        path, mtime
            The file and its mtime when analysed (to detect changes).
        """
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)  # (D,)
        if not np.isfinite(vec).all():
            raise ValueError(f"item {item_id}: embedding is not finite")
        with self.transaction() as db:
            # one row tells the model's dimension (every row was checked so); DISTINCT scanned the whole table
            dims = db.execute("SELECT dim FROM embeddings WHERE model_id=? LIMIT 1", (model_id,)).fetchall()
            if dims and dims[0][0] != vec.size:
                raise IndexMismatchError(
                    f"model {model_id}: store holds {dims[0][0]}-d vectors, got {vec.size}-d"
                )
            db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, model_id, feature_version, vec.size, vec.tobytes(), path, mtime, time.time()),
            )
            self._bump([model_id])

    def put_many(
        self,
        item_ids: np.ndarray,
        vectors: np.ndarray,
        *,
        model_id: str,
        feature_version: str,
    ) -> None:
        """Insert or replace many embeddings in one transaction (bulk loads, benchmarks).

        Parameters
        ----------
        item_ids : np.ndarray [shape=(N,)]
        vectors : np.ndarray [shape=(N, D)]
        """
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(vecs).all():
            raise ValueError("embeddings are not finite")
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
                (
                    (int(i), model_id, feature_version, vecs.shape[1], v.tobytes(), now)
                    for i, v in zip(item_ids, vecs)
                ),
            )
            self._bump([model_id])

    def get(self, item_id: int, model_id: str) -> np.ndarray | None:
        """The embedding ``(D,)`` of one item, or ``None``."""
        rows = self._read("SELECT vector FROM embeddings WHERE item_id=? AND model_id=?", (item_id, model_id))
        return np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None

    def row(self, item_id: int, model_id: str) -> Row | None:
        """Metadata of one item's embedding, or ``None``."""
        rows = self._read(
            "SELECT item_id, model_id, feature_version, path, mtime FROM embeddings WHERE item_id=? AND model_id=?",
            (item_id, model_id),
        )
        return Row(*rows[0]) if rows else None

    def rows(self, model_id: str | None = None) -> list[Row]:
        """Metadata of every embedding (of one model, or all)."""
        sql = "SELECT item_id, model_id, feature_version, path, mtime FROM embeddings"
        args: tuple = ()
        if model_id is not None:
            sql, args = sql + " WHERE model_id=?", (model_id,)
        return [Row(*r) for r in self._read(sql + " ORDER BY item_id", args)]

    def vectors(self, model_id: str, item_ids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of one model, sorted by item id.

        Returns
        -------
        ids : np.ndarray [shape=(N,), dtype=int64]
        vectors : np.ndarray [shape=(N, D), dtype=float32]
        """
        if item_ids is None:
            rows = self._read(
                "SELECT item_id, vector FROM embeddings WHERE model_id=? ORDER BY item_id", (model_id,)
            )
        else:
            wanted = sorted(set(int(i) for i in item_ids))
            rows = []
            for i in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
                chunk = wanted[i : i + 900]
                rows += self._read(
                    f"SELECT item_id, vector FROM embeddings WHERE model_id=? AND item_id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY item_id",
                    (model_id, *chunk),
                )
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])  # (N, D)
        return ids, vecs

    def remove(self, item_ids: Iterable[int], model_id: str | None = None) -> int:
        """Delete embeddings of these items (all models unless one is named); returns rows deleted."""
        ids = [int(i) for i in item_ids]
        if not ids:
            return 0
        deleted = 0
        with self.transaction() as db:
            models = (
                [model_id]
                if model_id
                else [r[0] for r in db.execute("SELECT DISTINCT model_id FROM embeddings")]
            )
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                sql = f"DELETE FROM embeddings WHERE item_id IN ({','.join('?' * len(chunk))})"
                args: tuple = tuple(chunk)
                if model_id:
                    sql, args = sql + " AND model_id=?", (*chunk, model_id)
                deleted += db.execute(sql, args).rowcount
            if deleted:
                self._bump(models)
        return deleted

    def set_path(self, item_id: int, path: bytes, mtime: float | None = None) -> None:
        """Record a moved file's new path (the embedding stays valid)."""
        with self.transaction() as db:
            if mtime is None:
                db.execute("UPDATE embeddings SET path=? WHERE item_id=?", (path, item_id))
            else:
                db.execute("UPDATE embeddings SET path=?, mtime=? WHERE item_id=?", (path, mtime, item_id))

    def count(self, model_id: str | None = None) -> int:
        """Number of embeddings (of one model, or all)."""
        if model_id is None:
            return self._read("SELECT COUNT(*) FROM embeddings")[0][0]
        return self._read("SELECT COUNT(*) FROM embeddings WHERE model_id=?", (model_id,))[0][0]

    def dim(self, model_id: str) -> int | None:
        """Dimension of ``model_id``'s vectors, or ``None`` if it has none."""
        rows = self._read("SELECT dim FROM embeddings WHERE model_id=? LIMIT 1", (model_id,))
        return int(rows[0][0]) if rows else None

    def owner(self) -> str | None:
        """The library this store belongs to (``claim``), or ``None`` if unclaimed."""
        rows = self._read("SELECT value FROM meta WHERE key='owner'")
        return str(rows[0][0]) if rows else None

    def claim(self, owner: str) -> None:
        """Record the library this store belongs to (a path or another identity)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('owner', ?)", (owner,))

    def copy_from(self, source: EmbeddingStore, item_ids: Iterable[int]) -> int:
        """Copy these items' rows (every model, with paths and mtimes) from another store.

        Returns
        -------
        int
            Rows copied.
        """
        wanted = sorted(set(int(i) for i in item_ids))
        rows: list[tuple] = []
        for i in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 900]
            rows += source._read(
                "SELECT item_id, model_id, feature_version, dim, vector, path, mtime, updated FROM embeddings "
                f"WHERE item_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
        if rows:
            with self.transaction() as db:
                db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._bump(r[1] for r in rows)
        return len(rows)

    def model_ids(self) -> list[str]:
        """Models that have embeddings in the store."""
        return [r[0] for r in self._read("SELECT DISTINCT model_id FROM embeddings ORDER BY model_id")]
