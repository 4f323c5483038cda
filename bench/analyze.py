#!/usr/bin/env python3
"""Analysis speed and memory on real music.

Usage::

    python bench/analyze.py DIR [--limit N] [--full-length N] [--workers 1,2] [--model NAME] [--baseline NAME]

``DIR`` is walked for audio files (e.g. ``../shared/data``: 30-s clips). With
``--full-length N`` the clips are first joined into N full-length tracks of about
4 minutes (44.1 kHz stereo, half MP3 and half FLAC, as a ripped library has), and
those are measured instead.

It prints:

- seconds per track for each stage of the import path: decode, features, model
  (in one process), tag write (genres + mood into a copy of the file) and store
  (the SQLite embedding store);
- a decode-only baseline (the whole file decoded, as any analyser must at least
  do) and the ratio of full analysis to it;
- tracks per second through the worker pool at each worker count, each track
  going from pool entry to tags written and embedding stored (what `beet mcbr`
  and the import stage do);
- peak resident memory of the host and of the largest worker;
- with ``--baseline`` (default ``msd-musicnn``, the default model before
  ``mcbr-fusion``): the same per-track analysis with that model, interleaved track by
  track in the same process, and the ratio of the two (issue 13's speed budget: all
  sources together at most 1.5x).

This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

AUDIO = {".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".au", ".aiff"}


def find_audio(folder: Path, limit: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO)
    if limit and len(files) > limit:
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def make_full_length(clips: list[Path], n: int, folder: Path, seconds: float = 240.0) -> list[Path]:
    """Join real clips into ``n`` tracks of ``seconds`` (44.1 kHz stereo; MP3 and FLAC alternately)."""
    import numpy as np
    import soundfile as sf

    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio

    decoders = [SoundfileDecoder(), PyAVDecoder()]
    folder.mkdir(parents=True, exist_ok=True)
    out, k = [], 0
    for i in range(n):
        parts, total = [], 0
        while total < seconds * 44100:
            y = load_audio(clips[k % len(clips)], sr=44100, decoders=decoders)
            k += 1
            parts.append(y)
            total += len(y)
        y = np.concatenate(parts)[: int(seconds * 44100)]
        stereo = np.stack([y, y * 0.9], axis=1)  # (n, 2)
        path = folder / f"track{i:03d}.{'mp3' if i % 2 == 0 else 'flac'}"
        sf.write(path, stereo, 44100, format="MP3" if path.suffix == ".mp3" else "FLAC")
        out.append(path)
    return out


def stage_times(
    files: list[Path], model: str, workdir: Path, baseline: str = "", **analysis: int
) -> tuple[dict[str, list[float]], list[float]]:
    """Per-stage seconds per track, in one process; and ``baseline``'s full analysis times, interleaved."""
    import mediafile

    from mcbr_core.analysis import Analyzer
    from mcbr_core.audio.decode import load_audio
    from mcbr_core.engine import Engine
    from mcbr_core.errors import McbrError
    from mcbr_core.settings import AnalysisSettings, IndexSettings, TagSettings
    from mcbr_core.store.embeddings import EmbeddingStore

    analyzer = Analyzer(AnalysisSettings(model=model, device="cpu", **analysis))
    other = Analyzer(AnalysisSettings(model=baseline, device="cpu", **analysis)) if baseline else None
    engine = Engine(analysis=AnalysisSettings(model=model), tags=TagSettings(), index=IndexSettings(),
                    store_path=workdir / "stage.db", index_dir=workdir)  # fmt: skip
    store = EmbeddingStore(workdir / "stage.db")
    for warm in (analyzer, other):
        if warm is not None:
            warm.analyze(files[0])
    times: dict[str, list[float]] = {k: [] for k in ("decode", "features", "model", "tag write", "store", "full",
                                                     "decode only", "audio")}  # fmt: skip
    base: list[float] = []
    for i, path in enumerate(files):
        if other is not None:  # same file, just before: the machine's load hits both alike
            t = time.perf_counter()
            try:
                other.analyze(path)
            except McbrError:
                pass
            base.append(time.perf_counter() - t)
        t = time.perf_counter()
        try:
            result = analyzer.analyze(path)
        except McbrError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            if base:
                base.pop()
            continue
        full = time.perf_counter() - t
        tags = engine.tags(result)
        copy = workdir / f"copy{path.suffix}"
        shutil.copyfile(path, copy)
        t = time.perf_counter()
        mf = mediafile.MediaFile(str(copy))
        mf.genres = tags.genres or ["Rock"]
        mf.save()
        write = time.perf_counter() - t
        t = time.perf_counter()
        store.put(i, result.embedding, model_id=result.model_id, feature_version=result.feature_version,
                  path=bytes(copy), mtime=0.0)  # fmt: skip
        put = time.perf_counter() - t
        t = time.perf_counter()
        y = load_audio(path, sr=44100, decoders=analyzer.decoders)  # whole file, native-like rate
        decode_only = time.perf_counter() - t
        for key, value in (("decode", result.timings["decode"]), ("features", result.timings["features"]),
                           ("model", result.timings["model"]), ("tag write", write), ("store", put),
                           ("full", full + write + put), ("decode only", decode_only),
                           ("audio", len(y) / 44100)):  # fmt: skip
            times[key].append(value)
        times.setdefault("analysis", []).append(full)
        del y
    store.close()
    return times, base


def pool_throughput(
    files: list[Path], model: str, workers: int, workdir: Path, threads: int = 0, **analysis: int
) -> tuple[float, float]:
    """Tracks per second through the pool, each track ending with tags written and embedding stored."""
    import mediafile

    from mcbr_core.engine import Engine
    from mcbr_core.settings import AnalysisSettings, IndexSettings, PoolSettings, TagSettings
    from mcbr_core.workers import AnalysisFailed, AnalysisPool

    copies = []
    for i, path in enumerate(files):
        copy = workdir / f"w{workers}-{i}{path.suffix}"
        shutil.copyfile(path, copy)
        copies.append(copy)
    settings = AnalysisSettings(model=model, device="cpu", threads=threads, **analysis)
    engine = Engine(analysis=settings, tags=TagSettings(), index=IndexSettings(),
                    store_path=workdir / f"pool{workers}.db", index_dir=workdir)  # fmt: skip
    with AnalysisPool(settings, PoolSettings(workers=workers, timeout=600, memory_mb=0)) as pool:
        # start every worker (torch import, model load) outside the timing
        list(pool.analyze([(i, copies[i % len(copies)]) for i in range(workers)]))
        t = time.perf_counter()
        for i, result in pool.analyze(enumerate(copies)):
            if isinstance(result, AnalysisFailed):
                continue
            tags = engine.tags(result)
            mf = mediafile.MediaFile(str(copies[i]))
            mf.genres = tags.genres or ["Rock"]
            mf.save()
            engine.store.put(i, result.embedding, model_id=result.model_id,
                             feature_version=result.feature_version, path=bytes(copies[i]), mtime=0.0)  # fmt: skip
        elapsed = time.perf_counter() - t
    engine.close()
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return len(copies) / elapsed, worker_peak


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument(
        "--limit", type=int, default=40, help="at most N source files (spread over the folder)"
    )
    parser.add_argument("--full-length", type=int, default=0, metavar="N",
                        help="join clips into N ~4-minute tracks (MP3 + FLAC) and measure those")  # fmt: skip
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput runs")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per worker (0: the cores shared out evenly, as the plugin does)")  # fmt: skip
    parser.add_argument("--model", default="mcbr-fusion")
    parser.add_argument("--baseline", default="msd-musicnn",
                        help="also time this model's analysis, interleaved, and print the ratio ('' : none)")  # fmt: skip
    parser.add_argument("--max-patches", type=int, default=16,
                        help="analysis patch budget (1000: the whole track, as musicnn itself does)")  # fmt: skip
    parser.add_argument("--window-patches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=0, help="patches per forward pass (0: auto)")
    args = parser.parse_args()
    analysis = {"max_patches": args.max_patches, "window_patches": min(args.window_patches, args.max_patches),
                "batch_size": args.batch_size}  # fmt: skip

    files = find_audio(
        args.dir, args.limit if not args.full_length else max(args.limit, 8 * args.full_length)
    )
    if not files:
        print(f"no audio files under {args.dir}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.full_length:
            files = make_full_length(files, args.full_length, workdir / "full")
        times, base = stage_times(files, args.model, workdir, args.baseline, **analysis)
        host_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rates = {
            int(w): pool_throughput(files, args.model, int(w), workdir, args.threads, **analysis)
            for w in args.workers.split(",")
        }

    import torch

    mean = statistics.fmean
    n = len(times["full"])
    kind = "full-length tracks" if args.full_length else "files"
    print(f"machine       : {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}")  # fmt: skip
    print(f"input         : {n} {kind} from {args.dir}, {mean(times['audio']):.1f} s of audio each")
    print(f"model         : {args.model}, max_patches {args.max_patches}, window_patches "
          f"{analysis['window_patches']}, batch_size {args.batch_size or 'auto'}")  # fmt: skip
    print("per track, one process (torch default threads):")
    for key in ("decode", "features", "model", "tag write", "store"):
        print(f"  {key:<12}: {mean(times[key]):.3f} s")
    print(f"  {'total':<12}: {mean(times['full']):.3f} s")
    print(f"decode only   : {mean(times['decode only']):.3f} s per track (whole file)")
    print(f"ratio         : {sum(times['full']) / sum(times['decode only']):.2f}x decode-only")
    if base:
        print(
            f"baseline      : {args.baseline} analysis {mean(base):.3f} s per track, {args.model} "
            f"{mean(times['analysis']):.3f} s: {sum(times['analysis']) / sum(base):.2f}x (same files, interleaved)"
        )
    for w, (rate, _) in rates.items():
        threads = args.threads or max(1, (os.cpu_count() or 1) // w)
        print(
            f"throughput    : {rate:.2f} tracks/s with {w} worker{'s' if w > 1 else ''} x {threads} torch thread(s)"
        )
    if 1 in rates and 2 in rates:
        print(f"speed-up 1->2 : {rates[2][0] / rates[1][0]:.2f}x")
    print(
        f"peak memory   : host {host_peak:.0f} MB, largest worker {max(p for _, p in rates.values()):.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
