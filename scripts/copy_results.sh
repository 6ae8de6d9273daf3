#!/usr/bin/env bash
# Copy finished runs into a results folder the way docs/results/ commits them: every file of the run directory
# except its checkpoint (tens of MB, and a result page cites metrics, not weights), its TensorBoard folder (the
# same numbers as metrics.jsonl) and its lock files. A run whose sweep_status.json does not say "finished" is
# skipped with a line saying so, so the command can be rerun as a sweep progresses.
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
mkdir -p "$dest"
for run in "$@"; do
  name=$(basename "$run")
  if [ ! -f "$run/metrics.jsonl" ]; then
    echo "skipped $name: not a run directory (no metrics.jsonl)"
    continue
  fi
  if ! grep -q '"state": "finished"' "$run/sweep_status.json" 2>/dev/null; then
    echo "skipped $name: not finished (its sweep_status.json)"
    continue
  fi
  mkdir -p "$dest/$name"
  find "$run" -maxdepth 1 -type f ! -name 'checkpoint.pt*' ! -name '.*lock' -exec cp {} "$dest/$name/" \;
  echo "copied $name"
done
