#!/usr/bin/env python3
"""Fault benchmark: the bad-input corpus, kill -9 recovery and concurrent runs.

Usage::

    python bench/faults.py [--items 300]

Prints the cases tried, crashes (must be 0), items with lost or changed tags
(must be 0) and store/index inconsistencies after recovery (must be 0). Uses
the toy model of tests/toymodel.py so that it measures the plugin, store and
index rather than the neural network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus_run(folder: Path) -> tuple[int, int, int, list[str]]:
    """Analyse the corpus in worker processes; returns (cases, crashes, unexpected outcomes, lines)."""
    from mcbr_core.settings import AnalysisSettings, PoolSettings
    from mcbr_core.workers import AnalysisFailed, AnalysisPool
    from tests.badinput import build_corpus
    from tests.toymodel import make_toy_model

    cases = build_corpus(folder / "corpus")
    model = make_toy_model(folder / "toy.safetensors")
    settings = AnalysisSettings(model=str(model), device="cpu", extra_plugins=("tests.faulty",),
                                decoders=("soundfile", "pyav"))  # fmt: skip
    lines, crashes, unexpected = [], 0, 0
    with AnalysisPool(settings, PoolSettings(workers=2, timeout=60, memory_mb=1500)) as pool:
        results = dict(pool.analyze((case.name, path) for case, path in cases))
    for case, _ in cases:
        result = results[case.name]
        outcome = "failed" if isinstance(result, AnalysisFailed) else "ok"
        if "crashed" in str(result) or "timed out" in str(result):
            crashes += 1
        if outcome not in case.expect:
            unexpected += 1
        detail = str(result) if outcome == "failed" else f"{result.analysed:.1f} s analysed"
        lines.append(f"  {case.name:<34} {outcome:<6} {detail[:90]}")
    return len(cases), crashes, unexpected, lines


def tag_loss_run(folder: Path) -> tuple[int, int]:
    """Import rich-tagged files in six formats through `beet import`; count files whose other tags changed."""
    import mediafile

    from tests.beetsplug.test_tag_safety import png, snapshot
    from tests.scenarios import beet

    incoming = folder / "incoming"
    incoming.mkdir(parents=True)
    from tests.audiogen import tone, write_audio

    files = []
    for fmt, v23 in [
        ("mp3", True),
        ("mp3", False),
        ("flac", False),
        ("ogg", False),
        ("opus", False),
        ("m4a", False),
    ]:
        path = incoming / f"{fmt}{'-v23' if v23 else ''}.{fmt}"
        write_audio(path, tone(3.0, freq=2500.0), 22050)
        mf = mediafile.MediaFile(str(path), id3v23=v23)
        mf.update({"title": path.stem, "artist": "A", "album": "B", "track": 1, "year": 2001, "comments": "c",
                   "lyrics": "l", "composer": "C", "bpm": 120})  # fmt: skip
        mf.images = [mediafile.Image(data=png(), desc="front", type=mediafile.ImageType.front)]
        mf.save()
        files.append((path.stem, snapshot(path)))
    from tests.toymodel import make_toy_model

    make_toy_model(folder / "toy.safetensors")
    (folder / "config.yaml").write_text(
        f"directory: {folder / 'music'}\nlibrary: {folder / 'library.db'}\nplugins: mcbr\n"
        "import: {copy: yes, write: yes, quiet: yes, duplicate_action: keep}\n"
        f"mcbr: {{workers: 0, extra_plugins: [tests.faulty], model: {folder / 'toy.safetensors'}}}\n"
    )
    beet(folder, "import", "-A", "-s", str(incoming))
    changed = 0
    for stem, before in files:
        (after,) = list((folder / "music").rglob(f"{stem}.*"))
        tags = mediafile.MediaFile(str(after))
        if snapshot(after) != before or tags.genres != ["Rock"]:
            changed += 1
    return len(files), changed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items", type=int, default=300, help="library size for the kill and concurrency runs"
    )
    args = parser.parse_args()
    from tests.scenarios import beet, beet_process, consistency, kill_midway, make_library, store_rows

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_cases, crashes, unexpected, lines = corpus_run(tmp)
        print(f"bad-input corpus: {n_cases} cases")
        print("\n".join(lines))
        n_files, changed = tag_loss_run(tmp / "tags")
        print(f"tag safety: {n_files} files in 6 formats, {changed} with lost or changed tags")

        lib = make_library(tmp / "kill", args.items)
        stored = kill_midway(lib, "mcbr", when_rows=args.items // 5)
        rerun = beet(lib, "mcbr")
        kill_problems = consistency(lib)
        print(f"kill -9: killed with {stored}/{args.items} stored; re-run rc={rerun.returncode}, "
              f"{store_rows(lib)}/{args.items} stored; inconsistencies {sum(kill_problems.values())} {kill_problems}")  # fmt: skip

        lib2 = make_library(tmp / "concurrent", args.items)
        a, b = beet_process(lib2, "mcbr"), beet_process(lib2, "mcbr", "-f")
        _, err_a = a.communicate()
        _, err_b = b.communicate()
        conc_problems = consistency(lib2)
        waited = "waiting" in err_a + err_b
        print(f"concurrent runs: rc={a.returncode},{b.returncode}; one waited: {waited}; "
              f"{store_rows(lib2)}/{args.items} stored; inconsistencies {sum(conc_problems.values())}")  # fmt: skip

    crashes += int(rerun.returncode != 0) + int(a.returncode != 0) + int(b.returncode != 0)
    inconsistent = sum(kill_problems.values()) + sum(conc_problems.values())
    print()
    print(f"cases tried           : {n_cases + n_files + 2}")
    print(f"crashes               : {crashes}")
    print(f"unexpected outcomes   : {unexpected}")
    print(f"lost or changed tags  : {changed}")
    print(f"inconsistencies       : {inconsistent}")
    print(f"time                  : {time.perf_counter() - t0:.1f} s")
    return 0 if crashes == unexpected == changed == inconsistent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
