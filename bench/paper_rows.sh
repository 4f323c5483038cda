#!/bin/bash
# The papers' networks of docs/results.md: 5-fold artist-disjoint CV on DATA/emotify (genre) and DATA/4q (mood).
#
#   bench/paper_rows.sh [DATA]     (DATA defaults to ../shared/data; run from the repository root, venv active)
#
# Each run goes to runs/paper/<dataset>-<arch> with a log beside it; a run with a report.txt is skipped, so the
# script can be stopped and started again. The budget options are for a 2-core CPU (docs/results.md explains them).
# Whitell's TimeFreq stacks trained Time and Freq models: its run starts from the Time and Freq rows' per-fold
# models (same folds, options and seeds, so training them again inside the run would repeat those runs), copied
# into RUN/branches/ and resumed; `mcbr train --arch whitell_timefreq` alone trains them itself.
set -u
DATA=${1:-../shared/data}
SHORT="--patch-seconds 10 --max-seconds 20 --epochs 4 --patience 2"
TOWER="--patch-seconds 15 --max-seconds 15 --epochs 3 --patience 2"
run() {  # name dataset task arch features [extra options]
  local out=runs/paper/$1 ds=$2 task=$3 arch=$4 feats=$5; shift 5
  [ -f "$out/report.txt" ] && return
  mkdir -p runs/paper
  ( time mcbr train --dataset "$ds" "$DATA/$ds" --task "$task" --arch "$arch" --features "$feats" --folds 5 \
      --workers 1 --out "$out" "$@" ) > "$out.log" 2>&1 || echo "$out failed: see $out.log"
}
stack_branches() {  # dataset: runs/paper/<ds>-whitell_timefreq from the Time and Freq runs
  python - "$1" <<'PY'
import json, shutil, sys
from pathlib import Path
ds = sys.argv[1]
out = Path(f"runs/paper/{ds}-whitell_timefreq")
if (out / "config.json").exists():
    sys.exit(0)
record = json.loads(Path(f"runs/paper/{ds}-whitell_time/config.json").read_text())
record["config"].update(architecture="whitell_timefreq", run_dir=str(out))
out.mkdir(parents=True)
(out / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
for branch in ("time", "freq"):
    src, dst = Path(f"runs/paper/{ds}-whitell_{branch}"), out / "branches" / branch
    shutil.copytree(src / "checkpoints", dst / "checkpoints")
    shutil.copy(src / "metrics.jsonl", dst / "metrics.jsonl")
PY
}
for ds in emotify 4q; do
  task=genre; [ $ds = 4q ] && task=mood
  run $ds-xing $ds $task xing xing-hyperimage --epochs 20 --patience 4
  run $ds-kcnn $ds $task zhang_kcnn zhang-audiowords --epochs 20 --patience 4
  for v in simple time freq timefreqavg; do run $ds-whitell_$v $ds $task whitell_$v whitell-mel $SHORT; done
  stack_branches $ds && run $ds-whitell_timefreq $ds $task whitell_timefreq whitell-mel $SHORT --resume
  run $ds-tower $ds $task tower tower-mel $TOWER
done
python bench/results_table.py
