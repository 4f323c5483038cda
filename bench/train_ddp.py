#!/usr/bin/env python3
"""Distributed training speed: one process against torchrun's DDP workers on the same cores.

Usage::

    python bench/train_ddp.py [--clips 96] [--workers 2] [--epochs 3] [--arch whitell_time] [--out DIR]

It writes a toy library of tones (``--clips`` clips, three genres), fills the feature
cache once, then trains the same run three ways with ``mcbr train`` on the CPU:

- one process, one thread;
- one process, ``--workers`` threads (all the cores the workers get);
- ``torchrun --nproc-per-node WORKERS -m mcbr_core.cli train``, one thread each.

and prints each run's seconds per epoch (the median of the epochs after the first,
from ``metrics.jsonl``: training, BatchNorm re-estimation and validation on worker
0), its training losses, and the ratios to the one-thread run. ``whitell_time`` has
BatchNorm, so the DDP losses differ slightly from one process's (each worker
normalises over its share of the batch).

This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audiogen import tone, write_audio

GENRES = {"Jazz": 300.0, "Pop": 1000.0, "Metal": 2500.0}


def write_library(folder: Path, clips: int, seconds: float) -> Path:
    """``clips`` tones over three genres and ``clips / 6`` artists, with ``library.csv``."""
    rows = []
    for i in range(clips):
        genre, freq = list(GENRES.items())[i % 3]
        artist = i // 6
        name = f"music/{genre}-{i}.wav"
        (folder / "music").mkdir(parents=True, exist_ok=True)
        write_audio(
            folder / name, tone(seconds, sr=8000, freq=freq * (1 + 0.03 * (artist % 5)), seed=i), 8000
        )
        rows.append(f"{name},{genre} artist {artist},{genre}")
    (folder / "library.csv").write_text("path,artist,genres\n" + "\n".join(rows) + "\n")
    return folder


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return time.perf_counter() - t0


def epochs(run_dir: Path) -> list[dict]:
    lines = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [r for r in lines if r["phase"] == "epoch"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=96)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each clip")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--arch", default="whitell_time")
    ap.add_argument("--features", default="whitell-mel")
    ap.add_argument("--patch-seconds", type=float, default=4.5)
    ap.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="mcbr-ddp-"))
    lib = write_library(work / "lib", args.clips, args.seconds)
    bin_dir = Path(sys.executable).parent
    common = ["train", "--dataset", "library", str(lib), "-O", "min_count=1", "--arch", args.arch, "--features",
              args.features, "--patch-seconds", str(args.patch_seconds), "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--patience", "0", "--device", "cpu", "--seed", "1",
              "--cache", str(work / "cache")]  # fmt: skip
    mcbr = [str(bin_dir / "mcbr")]
    torchrun = [str(bin_dir / "torchrun"), f"--nproc-per-node={args.workers}", "-m", "mcbr_core.cli"]
    run(
        [*mcbr, *common, "--epochs", "1", "--out", str(work / "warm")], args.workers
    )  # fills the feature cache
    runs = {
        "1 process, 1 thread": ([*mcbr, *common], 1),
        f"1 process, {args.workers} threads": ([*mcbr, *common], args.workers),
        f"{args.workers} DDP workers, 1 thread each": ([*torchrun, *common], 1),
    }
    results = {}
    for name, (cmd, threads) in runs.items():
        folder = work / name.replace(" ", "-").replace(",", "")
        wall = run([*cmd, "--out", str(folder)], threads)
        recs = epochs(folder)
        per_epoch = statistics.median(r["seconds"] for r in recs[1:] or recs)
        results[name] = per_epoch
        losses = ", ".join(f"{r['train_loss']:.4f}" for r in recs)
        print(f"{name:32s} {per_epoch:7.2f} s/epoch  (wall {wall:5.1f} s; train loss {losses})")
    base = next(iter(results.values()))
    for name, value in results.items():
        print(f"{name:32s} {value / base:5.2f}x the one-thread epoch time")
    print(f"{os.cpu_count()} CPUs; {args.clips} clips of {args.seconds:g} s, batch {args.batch_size}, {args.arch}; "
          f"folder {work}")  # fmt: skip


if __name__ == "__main__":
    main()
