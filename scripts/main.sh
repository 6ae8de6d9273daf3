#!/usr/bin/env bash
# The main job: set up, then train a PreND agent (shipped compact pre-trained backbone) on Boxing for a
# few minutes of a 2-core CPU.
# Extra arguments go to `prend train` (e.g. --total-steps 200000, or --method rnd to train RND instead).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OUT=${OUT:-runs/main-$(date +%Y%m%d-%H%M%S)}
.venv/bin/prend train --method prend --game Boxing --num-envs 8 --num-steps 128 --total-steps 49152 --out "$OUT" "$@"
echo "Results: $OUT  (metrics.jsonl; TensorBoard: .venv/bin/tensorboard --logdir $OUT/tb)"
