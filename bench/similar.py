#!/usr/bin/env python3
"""`beet similar` on a large library: its cost over beets' own start-up.

Usage::

    python bench/similar.py [--items 100000] [--runs 7]

Builds a real beets library of N items (no audio files: the items point at
placeholder paths) with synthetic 200-d embeddings in the mcbr store, builds the
index once, then times `beet similar id:K -n 10` against `beet ls id:K` in fresh
processes (median of --runs). Target: at most 100 ms more than `beet ls`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(folder: Path, n: int) -> None:
    from beets.library import Item, Library

    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.store.embeddings import EmbeddingStore

    lib = Library(str(folder / "library.db"), str(folder / "music"))
    rng = np.random.default_rng(0)
    with lib.transaction():
        for i in range(n):
            lib.add(Item(title=f"Track {i}", artist=f"Artist {i // 12}", album=f"Album {i // 12}",
                         path=str(folder / "music" / f"{i}.mp3").encode(), length=240.0))  # fmt: skip
    lib._close()
    card = read_card(resolve_model("msd-musicnn"))
    centres = rng.standard_normal((500, 200)).astype(np.float32)
    vectors = centres[rng.integers(0, 500, n)] + 0.3 * rng.standard_normal((n, 200)).astype(np.float32)
    with EmbeddingStore(folder / "mcbr.db") as store:
        store.put_many(
            np.arange(1, n + 1), vectors, model_id=card["id"], feature_version=card["features"]["version"]
        )


def timed(folder: Path, *args: str) -> float:
    env = dict(os.environ, BEETSDIR=str(folder), HOME=str(folder))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from beets.ui import main; main(sys.argv[1:])", *args],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.yaml").write_text(
            f"library: {folder / 'library.db'}\ndirectory: {folder / 'music'}\nplugins: mcbr\n"
        )
        t = time.perf_counter()
        build(folder, args.items)
        print(f"library       : {args.items} items with synthetic 200-d embeddings (built in "
              f"{time.perf_counter() - t:.0f} s)")  # fmt: skip
        t = time.perf_counter()
        timed(folder, "similar", "id:1", "-n", "10")  # first call builds the index
        print(f"index build   : {time.perf_counter() - t:.1f} s (first `beet similar`, once)")
        ls, similar = [], []
        for k in range(args.runs):
            item = str(1 + (k * 7919) % args.items)
            ls.append(timed(folder, "ls", f"id:{item}"))
            similar.append(timed(folder, "similar", f"id:{item}", "-n", "10"))
    a, b = statistics.median(ls) * 1000, statistics.median(similar) * 1000
    print(f"beet ls id:K  : {a:6.0f} ms (median of {args.runs})")
    print(f"beet similar  : {b:6.0f} ms (median of {args.runs})")
    print(f"similar adds  : {b - a:+6.0f} ms over beets' own start-up (target <= 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
