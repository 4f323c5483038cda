"""A catalogue: the analyses of a folder of files outside beets, keyed by path.

``mcbr analyze FOLDER -o STORE`` writes one (on a Ray cluster, or locally). It is an
embedding store like a library's (same table, same rows), with three differences:

- there are no beets item ids, so each file gets a synthetic id (stable across
  runs: a file analysed again keeps its id) and is found by its path;
- a second table keeps each analysis' clip-level scores and coverage, so that a
  library adopting a row gets exactly the tags a fresh analysis would give, under
  any tag source (``source: model`` included), without the audio;
- its owner is ``catalogue:<file>``: a library never claims it as its own store
  (``ownership.check_owner``); it adopts rows from it (``ownership.adopt_by_path``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.store.embeddings import EmbeddingStore

OWNER_PREFIX = "catalogue:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    item_id INTEGER NOT NULL,
    model_id TEXT NOT NULL,
    scores TEXT NOT NULL,
    duration REAL NOT NULL,
    analysed REAL NOT NULL,
    coverage REAL NOT NULL,
    PRIMARY KEY (item_id, model_id)
);
CREATE INDEX IF NOT EXISTS embeddings_path ON embeddings (path);
"""


@dataclass(frozen=True)
class Entry:
    """One file's row in a catalogue: what ``Analysis`` needs, and the file's mtime then."""

    item_id: int
    path: bytes
    mtime: float
    model_id: str
    feature_version: str
    embedding: np.ndarray  # (D,)
    scores: dict[str, dict[str, float]]
    duration: float
    analysed: float
    coverage: float


def is_catalogue(store: EmbeddingStore) -> bool:
    """Whether a store is a catalogue (written by ``mcbr analyze``)."""
    owner = store.owner()
    return owner is not None and owner.startswith(OWNER_PREFIX)


class Catalogue:
    """Read or write a catalogue file.

    Parameters
    ----------
    path
        The catalogue file.
    create
        Create it if missing (``mcbr analyze``); otherwise it must exist.

    Raises
    ------
    ConfigError
        If the file is missing (without ``create``), or is a library's store.
    """

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        path = Path(path)
        if not create and not path.is_file():
            raise ConfigError(f"no catalogue at {path} (write one with `mcbr analyze FOLDER -o {path}`)")
        self.store = EmbeddingStore(path)
        owner = self.store.owner()
        if owner is None and create and not self.store.count():
            self.store.claim(OWNER_PREFIX + os.path.realpath(path))
        elif not is_catalogue(self.store):
            self.store.close()
            what = f"the store of the library {owner}" if owner else "a store without a catalogue's marks"
            raise ConfigError(f"{path} is {what}, not a catalogue written by `mcbr analyze`")
        with self.store.transaction() as db:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    db.execute(stmt)

    @property
    def path(self) -> Path:
        return self.store.path

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mtimes(self, model_id: str, feature_version: str) -> dict[bytes, float]:
        """Path -> recorded mtime of every file analysed by this model and feature version."""
        rows = self.store._read(
            "SELECT path, mtime FROM embeddings WHERE model_id=? AND feature_version=? AND path IS NOT NULL",
            (model_id, feature_version),
        )
        return {bytes(p): float(m) for p, m in rows if m is not None}

    def put_many(self, rows: Iterable[tuple[bytes, float, object]]) -> int:
        """Write ``(path, mtime, Analysis)`` rows in one transaction; a file keeps its id across runs.

        Returns
        -------
        int
            Rows written.
        """
        rows = list(rows)
        if not rows:
            return 0
        now = time.time()
        with self.store.transaction() as db:
            (top,) = db.execute("SELECT COALESCE(MAX(item_id), 0) FROM embeddings").fetchone()
            for path, mtime, a in rows:
                vec = np.ascontiguousarray(a.embedding, dtype=np.float32).reshape(-1)  # (D,)
                if not np.isfinite(vec).all():
                    raise ValueError(f"{os.fsdecode(path)}: embedding is not finite")
                found = db.execute("SELECT item_id FROM embeddings WHERE path=? LIMIT 1", (path,)).fetchone()
                if found is None:
                    top += 1
                item_id = found[0] if found is not None else top
                db.execute(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (item_id, a.model_id, a.feature_version, vec.size, vec.tobytes(), path, mtime, now),
                )
                db.execute(
                    "INSERT OR REPLACE INTO analyses VALUES (?, ?, ?, ?, ?, ?)",
                    (item_id, a.model_id, json.dumps(a.scores), a.duration, a.analysed, a.coverage),
                )
            self.store._bump(a.model_id for _, _, a in rows)
        return len(rows)

    def lookup(self, paths: Iterable[bytes], model_id: str) -> dict[bytes, Entry]:
        """The entries of these paths by ``model_id`` (paths without one are left out)."""
        wanted = sorted(set(paths))
        out: dict[bytes, Entry] = {}
        for i in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 900]
            rows = self.store._read(
                "SELECT e.item_id, e.path, e.mtime, e.feature_version, e.vector, a.scores, a.duration, a.analysed, "
                "a.coverage FROM embeddings e JOIN analyses a ON a.item_id = e.item_id AND a.model_id = e.model_id "
                f"WHERE e.model_id=? AND e.path IN ({','.join('?' * len(chunk))})",
                (model_id, *chunk),
            )
            for item_id, path, mtime, fv, vec, scores, duration, analysed, coverage in rows:
                out[bytes(path)] = Entry(
                    item_id=item_id,
                    path=bytes(path),
                    mtime=float(mtime),
                    model_id=model_id,
                    feature_version=fv,
                    embedding=np.frombuffer(vec, dtype=np.float32).copy(),
                    scores=json.loads(scores),
                    duration=duration,
                    analysed=analysed,
                    coverage=coverage,
                )
        return out
