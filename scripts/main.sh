#!/usr/bin/env bash
# The main job: set up, then train a PreND agent (shipped compact pre-trained backbone) on Boxing for 24,576
# agent steps (24 iterations of 8 envs x 128 steps): about five minutes on a 2-core CPU, see README.md.
# Extra arguments go to `prend train` (e.g. --total-steps 200000, or --method rnd to train RND instead).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OUT=${OUT:-runs/main-$(date +%Y%m%d-%H%M%S)}
echo "main: training PreND on Boxing into $OUT"
.venv/bin/prend train --method prend --game Boxing --num-envs 8 --num-steps 128 --total-steps 24576 --out "$OUT" "$@"
echo "Results: $OUT  (metrics.jsonl; TensorBoard: .venv/bin/tensorboard --logdir $OUT/tb)"
