#!/usr/bin/env python3
"""Analysis speed and memory: full analysis versus decode only.

Usage::

    python bench/analyze.py DIR [--limit N] [--model NAME] [--threads T]

Walks DIR for audio files and prints, per track on average:

- full analysis (decode the analysis windows, features, model), split into its parts;
- a decode-only baseline: the whole file decoded and resampled to the model's rate;
- the ratio of the two, and the process's peak resident memory.

This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

AUDIO = {".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".au", ".aiff"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="at most N files (spread over the folder)")
    parser.add_argument("--model", default="msd-musicnn")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()

    files = sorted(p for p in args.dir.rglob("*") if p.suffix.lower() in AUDIO)
    if args.limit and len(files) > args.limit:
        step = len(files) / args.limit
        files = [files[int(i * step)] for i in range(args.limit)]
    if not files:
        print(f"no audio files under {args.dir}", file=sys.stderr)
        return 1

    from mcbr_core.analysis import Analyzer
    from mcbr_core.audio.decode import load_audio
    from mcbr_core.errors import McbrError
    from mcbr_core.settings import AnalysisSettings

    t0 = time.perf_counter()
    analyzer = Analyzer(AnalysisSettings(model=args.model, threads=args.threads, device="cpu"))
    analyzer.analyze(files[0])  # warm-up: first-call allocations and kernel selection
    startup = time.perf_counter() - t0

    full, decode_only, parts, audio_s, failed = [], [], {"decode": [], "features": [], "model": []}, 0.0, 0
    for path in files:
        t = time.perf_counter()
        try:
            result = analyzer.analyze(path)
        except McbrError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        full.append(time.perf_counter() - t)
        for k in parts:
            parts[k].append(result.timings.get(k, 0.0))
        audio_s += result.duration
        t = time.perf_counter()
        load_audio(path, sr=analyzer.extractor.sample_rate, decoders=analyzer.decoders)
        decode_only.append(time.perf_counter() - t)

    n = len(full)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mean = statistics.fmean
    print(f"machine      : {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{__import__('os').cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}")  # fmt: skip
    print(f"files        : {n} analysed, {failed} failed, {audio_s / max(n, 1):.1f} s of audio each on average")
    print(f"model        : {analyzer.model_id} (start-up and warm-up {startup:.2f} s)")
    print(f"full analysis: {mean(full):.3f} s/track  ({n / sum(full):.2f} tracks/s)")
    print("  decode     : {:.3f} s/track".format(mean(parts["decode"])))
    print("  features   : {:.3f} s/track".format(mean(parts["features"])))
    print("  model      : {:.3f} s/track".format(mean(parts["model"])))
    print(f"decode only  : {mean(decode_only):.3f} s/track (whole file, resampled to "
          f"{analyzer.extractor.sample_rate} Hz)")  # fmt: skip
    print(f"ratio        : {sum(full) / sum(decode_only):.1f}x decode-only")
    print(f"peak memory  : {peak_mb:.0f} MB resident")
    return 0


if __name__ == "__main__":
    sys.exit(main())
