#!/usr/bin/env python3
"""Print the results table of docs/results.md from the cross-validation run folders.

Usage::

    python bench/results_table.py [--runs runs]

Each row reads the ``summary`` line of ``RUN/metrics.jsonl`` written by
``mcbr train --folds 5`` (mean and standard deviation over the 5 artist-disjoint test
folds). A run that is missing or unfinished prints as ``not run``. The run folders and
the commands that fill them are listed in ``ROWS`` and in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: (row name, 4Q mood run, Emotify genre run), relative to --runs
ROWS: list[tuple[str, str, str]] = [
    ("MFCC/chroma/contrast statistics + logistic regression (`stats`)", "4q-stats", "emo-stats"),
    ("linear probe on the msd-musicnn embedding, per 3-s patch (`probe`)", "4q-probe-msd", "emo-probe-msd"),
    ("**clip head on the msd-musicnn embedding (`head`): the shipped mcbr-mood / mcbr-genre**",
     "ship/mcbr-mood-cv", "ship/mcbr-genre-cv"),
    ("Xing et al.: hyper-image CNN (`xing`)", "paper/4q-xing", "paper/emotify-xing"),
    ("Tower & Vegner: encoder + predictor (`tower`)", "paper/4q-tower", "paper/emotify-tower"),
    ("Zhang et al.: KCNN on audio words (`zhang_kcnn`)", "paper/4q-kcnn", "paper/emotify-kcnn"),
    ("Whitell: Simple (`whitell_simple`)", "paper/4q-whitell_simple", "paper/emotify-whitell_simple"),
    ("Whitell: Time (`whitell_time`)", "paper/4q-whitell_time", "paper/emotify-whitell_time"),
    ("Whitell: Freq (`whitell_freq`)", "paper/4q-whitell_freq", "paper/emotify-whitell_freq"),
    ("Whitell: TimeFreq (`whitell_timefreq`)", "paper/4q-whitell_timefreq", "paper/emotify-whitell_timefreq"),
    ("Whitell: TimeFreqAvg (`whitell_timefreqavg`)", "paper/4q-whitell_timefreqavg",
     "paper/emotify-whitell_timefreqavg"),
]  # fmt: skip


def summary(run: Path) -> dict | None:
    """The run's cross-validation summary, or ``None`` when it has not finished."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return None
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        if record.get("phase") == "summary":
            return record
    return None


def cell(s: dict | None, key: str) -> str:
    if s is None or key not in s["mean"]:
        return "not run"
    return f"{s['mean'][key]:.3f} ± {s['std'][key]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    args = ap.parse_args()
    print("| model | 4Q quadrant macro-F1 | Emotify genre accuracy | same-artist P@5, 4Q | same-artist P@5, Emotify |")
    print("|---|---:|---:|---:|---:|")
    for name, q, e in ROWS:
        sq, se = summary(args.runs / q), summary(args.runs / e)
        print(f"| {name} | {cell(sq, 'macro_f1')} | {cell(se, 'accuracy')} | {cell(sq, 'artist_precision_at_5')} "
              f"| {cell(se, 'artist_precision_at_5')} |")  # fmt: skip


if __name__ == "__main__":
    main()
