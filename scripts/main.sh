#!/usr/bin/env bash
# The first run: set up, then show what an intrinsic reward is for. On Deep Sea (N = 10: a random policy finds
# the treasure once in 1,024 episodes) it trains RND and plain PPO, 2 seeds each, 24 iterations of 8 envs x 128
# steps per run, evaluates each final policy over 30 games and writes a figure of who found the treasure, in
# which episode, a report and a short video of each agent with its intrinsic reward. About 2.5 minutes on an
# idle 2-core CPU after set-up (measured: README.md). Run it again to resume an interrupted run.
#
#   bash scripts/main.sh                  # the Deep Sea first run, into runs/main-<date>-<time>/
#   OUT=runs/mine bash scripts/main.sh    # ... into runs/mine/
#   bash scripts/main.sh --atari [FLAGS]  # the Atari pipeline instead: PreND on Boxing for 24,576 agent steps
#                                         # (FLAGS go to `prend train`, e.g. --method rnd --total-steps 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OUT=${OUT:-runs/main-$(date +%Y%m%d-%H%M%S)}
START=$SECONDS
if [ "${1:-}" = "--atari" ]; then
  shift
  echo "main: training PreND on Boxing into $OUT"
  .venv/bin/prend train --method prend --game Boxing --num-envs 8 --num-steps 128 --total-steps 24576 --out "$OUT" "$@"
  echo "Results: $OUT  (metrics.jsonl; TensorBoard: .venv/bin/tensorboard --logdir $OUT/tb)"
  echo "Then: .venv/bin/prend eval $OUT; .venv/bin/prend video $OUT --out $OUT/agent.mp4"
  exit 0
fi
echo "main: RND vs plain PPO on Deep Sea N=10, 2 seeds each, into $OUT"
.venv/bin/python benchmarks/deepsea.py --sizes 10 --iterations 24 --methods rnd,none --seeds 1,2 --workers 2 \
  --eval-episodes 30 --out "$OUT" --figure "$OUT/first_run.png"
.venv/bin/prend report "$OUT/size10" --reps 5000 > /dev/null
for method in rnd none; do
  .venv/bin/prend video "$OUT/size10/prend_DeepSea-v0-$method-s1" --out "$OUT/${method/none/ppo}_agent.mp4" \
    --seconds 6 --fps 8 > /dev/null
done
echo "main: done in $((SECONDS - START)) s (set-up excluded). In $OUT:"
echo "  first_run.png        who found the treasure, in which episode (training), and 30 evaluation games per run"
echo "  results.md           the same as a table (results.json: per run)"
echo "  rnd_agent.mp4        RND seed 1 playing, its intrinsic reward, game reward and values beneath"
echo "  ppo_agent.mp4        plain PPO seed 1 playing, game reward and value beneath"
echo "  size10/report.md     prend report: score curves (fig2_scores.png), final scores per seed, intrinsic reward, evaluation IQM"
echo "  size10/<run>/        each run: metrics.jsonl, checkpoint.pt, eval.json, train.log (prend eval/video take it)"
