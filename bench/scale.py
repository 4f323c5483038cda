#!/usr/bin/env python3
"""Analysis throughput: the local pool against a local Ray cluster of one and two workers.

Usage::

    python bench/scale.py [DIR] [--tracks N] [--model NAME] [--batch-size B] [--rows R]

``DIR`` (default ``../shared/data``) is walked for audio clips, which are joined
into N full-length tracks of 4 minutes (44.1 kHz stereo, MP3 and FLAC alternately,
as ``bench/analyze.py --full-length`` makes them). The same files then go through

- the local pool (``AnalysisPool``) with 1 and 2 worker processes of one torch
  thread each (what ``beet mcbr`` does without ``--ray``);
- a Ray cluster on this machine (``tests/raycluster.py``: ``ray start``, its own
  temp dir, stopped by its own processes only): a head node with one CPU (one
  worker), then with a second one-CPU node added (two workers), through
  ``RayAnalysisPool`` (what ``beet mcbr --ray ADDRESS`` does).

Each configuration is warmed up first (worker processes started, model loaded,
which a long run pays once) and then timed from the first job to the last result,
the host storing each embedding as it arrives. It also prints the size of a store
row (library store and catalogue) measured on real SQLite files of R rows with the
model's embedding size and paths as long as the generated ones.

This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def timed(pool, files: list[Path], store) -> tuple[float, int]:
    """Tracks per second through ``pool``, the host storing each result; and the failures."""
    from mcbr_core.workers import AnalysisFailed

    t = time.perf_counter()
    failed = 0
    for i, result in pool.analyze(enumerate(files)):
        if isinstance(result, AnalysisFailed):
            failed += 1
            print(f"  {files[i].name}: {result}", file=sys.stderr)
            continue
        store.put(i, result.embedding, model_id=result.model_id, feature_version=result.feature_version,
                  path=os.fsencode(files[i]), mtime=files[i].stat().st_mtime)  # fmt: skip
    return len(files) / (time.perf_counter() - t), failed


def row_bytes(
    folder: Path, rows: int, dim: int, path_len: int, scores: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Bytes per row of a library store and of a catalogue of ``rows`` rows (file size / rows), and seconds per row."""
    import numpy as np

    from mcbr_core.analysis import Analysis
    from mcbr_core.store.catalogue import Catalogue
    from mcbr_core.store.embeddings import EmbeddingStore

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)  # (R, D)
    paths = [f"/music/{'x' * max(path_len - 20, 1)}/{i:08d}.flac".encode() for i in range(rows)]
    library = EmbeddingStore(folder / "library.db")
    t = time.perf_counter()
    for i in range(rows):  # one transaction per track, as the plugin writes them
        library.put(i + 1, vectors[i], model_id="model", feature_version="1", path=paths[i], mtime=1.7e9)
    put_s = (time.perf_counter() - t) / rows
    library.close()
    with Catalogue(folder / "catalogue.db", create=True) as cat:
        analyses = [Analysis(path=p.decode(), model_id="model", feature_version="1", duration=240.0, analysed=48.0,
                             scores=scores, embedding=vectors[i]) for i, p in enumerate(paths)]  # fmt: skip
        t = time.perf_counter()
        for k in range(0, rows, 64):  # transactions of 64 rows, as `mcbr analyze` writes them
            cat.put_many((p, 1.7e9, a) for p, a in zip(paths[k : k + 64], analyses[k : k + 64], strict=True))
        catalogue_s = (time.perf_counter() - t) / rows
    for name in ("library.db", "catalogue.db"):  # fold the WAL into the file before measuring it
        import sqlite3

        con = sqlite3.connect(folder / name)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("VACUUM")
        con.close()
    sizes = {name: (folder / f"{name}.db").stat().st_size / rows for name in ("library", "catalogue")}
    return {**sizes, "library put": put_s, "catalogue put": catalogue_s}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path, nargs="?", default=ROOT.parent / "shared" / "data")
    parser.add_argument("--tracks", type=int, default=12, help="full-length tracks to make and analyse")
    parser.add_argument("--model", default="mcbr-fusion")
    parser.add_argument("--batch-size", type=int, default=2, help="files per Ray task")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the stores whose size is measured")
    parser.add_argument("--stores-only", action="store_true", help="measure the store rows only")
    parser.add_argument("--keep", type=Path, metavar="FOLDER",
                        help="keep the generated tracks in FOLDER, and reuse those found there")  # fmt: skip
    parser.add_argument("--path-bytes", type=int, default=90,
                        help="path length of those rows (a library's /music/Artist/Album/NN Title.flac)")  # fmt: skip
    args = parser.parse_args()

    import ray
    from analyze import find_audio, make_full_length

    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.ray_pool import RayAnalysisPool
    from mcbr_core.settings import AnalysisSettings, PoolSettings, RaySettings
    from mcbr_core.store.embeddings import EmbeddingStore
    from mcbr_core.workers import AnalysisPool
    from tests.raycluster import LocalCluster

    if args.stores_only:
        args.tracks = 0
    clips = find_audio(args.dir, 8 * max(args.tracks, 1))
    if not clips:
        print(f"no audio files under {args.dir}", file=sys.stderr)
        return 1
    settings = AnalysisSettings(model=args.model, device="cpu", threads=1)
    limits = PoolSettings(workers=1, timeout=600, memory_mb=0)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mcbr-scale-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        kept = sorted(args.keep.glob("track*.*")) if args.keep and args.keep.is_dir() else []
        if len(kept) >= args.tracks:
            files = kept[: args.tracks]
        else:
            files = make_full_length(clips, args.tracks, args.keep or work / "tracks")
            print(f"made {len(files)} tracks of 240 s in {time.perf_counter() - t:.0f} s", flush=True)
        warm = files[:2]  # one file per worker, outside the timing

        for workers in (1, 2) if files else ():
            with AnalysisPool(settings, PoolSettings(workers=workers, timeout=600, memory_mb=0)) as pool, \
                    EmbeddingStore(work / f"local{workers}.db") as store:  # fmt: skip
                list(pool.analyze(enumerate(warm)))
                key = f"local pool, {workers} worker{'s' * (workers > 1)}"
                rates[key], _ = timed(pool, files, store)
            print(f"{key}: {rates[key]:.2f} tracks/s", flush=True)

        cluster = LocalCluster(work / "ray").start(num_cpus=1) if files else None
        try:
            if cluster is not None:
                ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
            for workers in (1, 2) if cluster is not None else ():
                if workers == 2:
                    cluster.add_node(num_cpus=1)
                    cluster.wait_for_cpus(2)
                ray_settings = RaySettings(address=cluster.address, batch_size=args.batch_size, num_cpus=1)
                with RayAnalysisPool(settings, limits, ray_settings) as pool, \
                        EmbeddingStore(work / f"ray{workers}.db") as store:  # fmt: skip
                    # one one-file task per worker: each starts its analysis process and loads the model
                    list(pool.analyze(enumerate(files[: 2 * workers])))
                    key = f"Ray cluster, {workers} worker{'s' * (workers > 1)}"
                    rates[key], _ = timed(pool, files, store)
                print(f"{key}: {rates[key]:.2f} tracks/s", flush=True)
        finally:
            if cluster is not None:
                ray.shutdown()
                cluster.stop()

        card = read_card(resolve_model(args.model))
        dim = int(card["embedding"]["dim"])
        from mcbr_core.tagging import taggable_scores

        every = {head: dict.fromkeys(labels, 0.123456789) for head, labels in card["heads"].items()}
        scores = taggable_scores(every, card.get("tag_kinds", {}))  # what `mcbr analyze` keeps of them
        sizes = row_bytes(work, args.rows, dim, args.path_bytes, scores)

    print()
    print(f"machine : {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    if files:
        print(f"input   : {len(files)} tracks of 240 s (MP3 and FLAC), {args.model}, "
              f"{settings.max_patches} patches in {settings.max_patches // settings.window_patches} windows")  # fmt: skip
    for name, rate in rates.items():
        print(f"{name:<24}: {rate:.2f} tracks/s")
    print(f"store row   : {sizes['library']:.0f} bytes (library store, {dim}-d float32, paths of "
          f"{args.path_bytes} bytes, {args.rows} rows)")  # fmt: skip
    print(f"catalogue   : {sizes['catalogue']:.0f} bytes per row (with its scores of "
          f"{sum(len(v) for v in scores.values())} labels)")  # fmt: skip
    print(f"store write : {sizes['library put'] * 1000:.2f} ms per row (one transaction each, as beet mcbr); "
          f"catalogue {sizes['catalogue put'] * 1000:.3f} ms per row (64 per transaction, as mcbr analyze)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
