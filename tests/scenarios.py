"""Whole-program fault scenarios: real `beet` processes on a generated library.

Used by tests/beetsplug/test_crash_safety.py and bench/faults.py. The library
uses the toy model (through ``extra_plugins: [tests.faulty]``) so hundreds of
items analyse in seconds; what is exercised is the plugin, store and index.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def make_library(folder: Path, n: int, *, workers: int = 0) -> Path:
    """A beets library of ``n`` one-second WAV tracks, imported without analysis."""
    music = folder / "incoming"
    music.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    for i in range(n):
        freq = 200 + 40 * (i % 60)
        y = (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(8000)).astype(np.float32)
        sf.write(music / f"track{i:04d}.wav", y, 8000, subtype="PCM_16")
    (folder / "config.yaml").write_text(
        f"""
directory: {folder / "music"}
library: {folder / "library.db"}
plugins: mcbr
import:
  copy: yes
  write: no
  quiet: yes
  duplicate_action: keep
  log:
mcbr:
  auto: no
  workers: {workers}
  extra_plugins: [tests.faulty]
  model: {folder / "toy.safetensors"}
  index:
    backend: annoy
"""
    )
    sys.path.insert(0, str(ROOT))
    from tests.toymodel import make_toy_model

    make_toy_model(folder / "toy.safetensors")
    beet(folder, "import", "-A", "-s", str(music))
    return folder


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BEETSDIR=str(folder), HOME=str(folder), PYTHONPATH=str(ROOT))
    return env


def beet_process(folder: Path, *args: str) -> subprocess.Popen:
    """Start ``beet ARGS`` on the library in ``folder``."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from beets.ui import main; main(sys.argv[1:])", *args],
        env=_env(folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def beet(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``beet ARGS`` to completion."""
    proc = beet_process(folder, *args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill_midway(folder: Path, *args: str, when_rows: int, timeout: float = 120) -> int:
    """Start ``beet ARGS`` and ``kill -9`` it once ``when_rows`` embeddings are stored; returns rows stored."""
    proc = beet_process(folder, *args)
    deadline = time.monotonic() + timeout
    while store_rows(folder) < when_rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return store_rows(folder)


def store_rows(folder: Path) -> int:
    db = folder / "library.mcbr.db"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def consistency(folder: Path) -> dict[str, int]:
    """Count inconsistencies between library, store and index (all zero when healthy)."""
    import json

    lib = sqlite3.connect(folder / "library.db")
    items = {r[0] for r in lib.execute("SELECT id FROM items")}
    ok_items = {
        r[0]
        for r in lib.execute("SELECT entity_id FROM item_attributes WHERE key='mcbr_status' AND value='ok'")
    }
    lib.close()
    con = sqlite3.connect(folder / "library.mcbr.db")
    rows = con.execute("SELECT item_id, dim, length(vector) FROM embeddings").fetchall()
    (generation,) = con.execute(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key LIKE 'generation:%'"
    ).fetchone()
    con.close()
    stored = {r[0] for r in rows}
    problems = {
        "half-written rows": sum(1 for _, dim, size in rows if size != 4 * dim),
        "orphaned embeddings": len(stored - items),
        "analysed items without embedding": len(ok_items - stored),
        "items never analysed": len(items - stored),
        "temporary files left": len(list(folder.glob("*.tmp*"))),
    }
    metas = list((folder / "library.mcbr-index").glob("mcbr-*.json"))
    if not metas:
        problems["index missing"] = 1
    else:
        meta = json.loads(metas[0].read_text())
        ids = np.load(str(metas[0]).replace(".json", ".ids.npy"))
        problems["index entries not in store"] = len(set(ids.tolist()) - stored)
        problems["store entries not in index"] = len(stored - set(ids.tolist()))
        problems["index generation behind store"] = int(meta["generation"] != generation)
        ann = Path(str(metas[0]).replace(".json", ".ann"))
        problems["index size mismatch"] = int(ann.stat().st_size != meta["sizes"][".ann"])
    return problems
