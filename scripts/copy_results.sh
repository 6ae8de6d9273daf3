#!/usr/bin/env bash
# Copy finished runs into a results folder the way docs/results/ commits them: every file of the run directory
# except its checkpoint (tens of MB, and a result page cites metrics, not weights), its TensorBoard folder (the
# same numbers as metrics.jsonl) and its lock files. A run not finished is skipped with a line saying so, so the
# command can be rerun as a sweep progresses: a run is finished when nothing trains it and it reached the budget
# in its config.json, by its sweep's sweep_status.json or, trained or continued by hand, by metrics written before
# its last checkpoint (prend.rundir's own check, run by the checkout's .venv, or $PYTHON).
#
#   bash scripts/copy_results.sh DEST RUN_DIR...
#   bash scripts/copy_results.sh docs/results/paper-answer/runs runs/paper-answer-s1/*
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/copy_results.sh DEST RUN_DIR... (copies finished runs without checkpoints)" >&2
  exit 2
fi
dest=$1
shift
python=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
[ -x "$python" ] || python=python3
finished() {
  "$python" -c 'import sys
try:
    from prend.rundir import RunDir
except ImportError:
    sys.exit(3)
run = RunDir(sys.argv[1])
sys.exit(0 if run.holder() is None and run.finished_steps() >= run.config()["run"]["total_steps"] else 1)' "$1" \
    2>/dev/null && return 0
  # without prend importable, only a sweep's own word counts
  [ $? -eq 3 ] && [ -f "$1/sweep_status.json" ] && grep -q '"state": "finished"' "$1/sweep_status.json"
}
mkdir -p "$dest"
for run in "$@"; do
  name=$(basename "$run")
  if [ ! -f "$run/metrics.jsonl" ]; then
    echo "skipped $name: not a run directory (no metrics.jsonl)"
    continue
  fi
  if ! finished "$run"; then
    echo "skipped $name: not finished (its sweep_status.json, or by hand: its metrics and checkpoint)"
    continue
  fi
  mkdir -p "$dest/$name"
  find "$run" -maxdepth 1 -type f ! -name 'checkpoint.pt*' ! -name '.*lock' -exec cp {} "$dest/$name/" \;
  echo "copied $name"
done
