#!/usr/bin/env python3
"""Print the results table of docs/results.md from the cross-validation run folders.

Usage::

    python bench/results_table.py [--runs runs] [--write docs/results.md]

Each row reads the ``summary`` line of ``RUN/metrics.jsonl`` written by
``mcbr train --folds 5`` (mean and standard deviation over the 5 artist-disjoint test
folds). A run that is missing or unfinished prints as ``not run``. The run folders and
the commands that fill them are listed in ``ROWS`` and in docs/results.md.
``--write`` replaces the table between the ``RESULTS_TABLE`` markers of that file.
"""

from __future__ import annotations

import argparse
import json
import re
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


def table(runs: Path) -> str:
    """The markdown table of every row."""
    lines = ["| model | 4Q quadrant macro-F1 | Emotify genre accuracy | same-artist P@5, 4Q | same-artist P@5, Emotify |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, q, e in ROWS:
        sq, se = summary(runs / q), summary(runs / e)
        lines.append(f"| {name} | {cell(sq, 'macro_f1')} | {cell(se, 'accuracy')} "
                     f"| {cell(sq, 'artist_precision_at_5')} | {cell(se, 'artist_precision_at_5')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--write", type=Path, help="markdown file whose RESULTS_TABLE block to replace")
    args = ap.parse_args()
    text = table(args.runs)
    if args.write is None:
        print(text, end="")
        return
    doc = args.write.read_text(encoding="utf-8")
    block = re.compile(r"<!-- RESULTS_TABLE -->.*?<!-- /RESULTS_TABLE -->", re.DOTALL)
    if not block.search(doc):
        raise SystemExit(f"{args.write}: no <!-- RESULTS_TABLE --> ... <!-- /RESULTS_TABLE --> block")
    args.write.write_text(block.sub(lambda _: f"<!-- RESULTS_TABLE -->\n{text}<!-- /RESULTS_TABLE -->", doc),
                          encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    main()
