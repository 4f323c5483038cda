#!/usr/bin/env python3
"""`beet` start-up cost of the plugin: `beet ls` with and without mcbr enabled.

Usage::

    python bench/startup.py [--runs 15]

Runs `beet ls` on an empty library in fresh processes, alternating the two
configurations, and prints the median wall time of each and the difference
(target: at most 30 ms). A benchmark, not a test.
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


def run(folder: Path) -> float:
    env = dict(os.environ, BEETSDIR=str(folder), HOME=str(folder))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from beets.ui import main; main(['ls'])"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, plugins in (("without mcbr", "[]"), ("with mcbr", "mcbr")):
            folder = Path(tmp) / name.replace(" ", "-")
            folder.mkdir()
            (folder / "config.yaml").write_text(
                f"library: {folder / 'lib.db'}\ndirectory: {folder / 'music'}\nplugins: {plugins}\n"
            )
            run(folder)  # create the database, warm the file cache
            folders[name] = folder
        times: dict[str, list[float]] = {name: [] for name in folders}
        for _ in range(args.runs):
            for name, folder in folders.items():
                times[name].append(run(folder))
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in med.items():
        print(f"beet ls {name:<13}: {ms:6.1f} ms (median of {args.runs})")
    print(f"plugin start-up cost  : {med['with mcbr'] - med['without mcbr']:+6.1f} ms (target <= 30 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
