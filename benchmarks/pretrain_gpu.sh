#!/usr/bin/env bash
# Pre-trains a larger backbone on one GPU within a fixed time budget and brings back one folder (9 minutes by
# default on one H100/H200-class GPU, set-up included):
#   1. an NVIDIA GPU is there (nvidia-smi) - otherwise stop, exit 3: this script never falls back to the CPU;
#   2. the interpreter (--python, else .venv/bin/python, else python3), with --wheels' packages installed
#      beside it, has a torch that sees the GPU and prend's dependencies - otherwise stop, exit 4;
#   3. frames: prend collect of the default games with Boxing (never Riverraid) and of the probe frames
#      (Boxing + Riverraid, seed 1, with --ram), unless --data / --probe-data are given;
#   4. a 40-step timed warm-up of prend pretrain, then prend pretrain with --steps fitted to what is left of the
#      budget (stopped at its deadline if it runs over; its last checkpoint is kept);
#   5. the backbone exported (export_backbone) and probed (prend probe; its --state probe beside it) into OUT:
#      backbone.pt, backbone.json, probe.json, probe.md, summary.json, log.txt; exit 1 if a step failed or ran out.
#
# Usage: bash benchmarks/pretrain_gpu.sh [--out DIR] [--work DIR] [--budget S] [--objective OBJ] [--arch ARCH]
#                  [--width W] [--batch-size B] [--frames-per-game N] [--num-envs K] [--data DIR]
#                  [--probe-data DIR] [--probe-seconds S] [--seed S] [--python PY] [--wheels DIR] [-- FLAGS]
#   --out DIR              the folder to bring back (default: pretrain_gpu/<UTC time>)
#   --work DIR             frames, checkpoints, logs (default: OUT.work, beside OUT)
#   --budget S             seconds for everything, set-up included (default 540)
#   --objective OBJ        prend pretrain --objective (default siammae)
#   --arch ARCH            resnet18, resnet34 or resnet50 (default resnet18)
#   --width W              backbone width multiplier (default 0.5)
#   --batch-size B         pairs per optimizer step (default 512, Atari-PB's)
#   --frames-per-game N    pre-training frames collected per game (default 15000; 20 games: 300k frames)
#   --num-envs K           emulators per game while collecting (default 16, one per core)
#   --data DIR             take these pre-training frames (a prend collect folder) instead of collecting
#   --probe-data DIR       take these probe frames instead of collecting them
#   --probe-seconds S      seconds kept for the probes at the end (default 180)
#   --seed S               pre-training seed (default 0)
#   --python PY            the interpreter (default: .venv/bin/python if there, else python3); prend from src/
#   --wheels DIR           install DIR/*.whl (no index, no deps) into WORK/site first and put it on the path
#   -- FLAGS               further prend pretrain flags (e.g. --dim 256 --channels-last), for both runs
# Details, and how to run it through the device tool: docs/reproduce.md ("Pre-training on a GPU").
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."

usage() { sed -n '14,32p' "$0" | sed 's/^# \{0,1\}//' >&2; }
die() { local code=$1; shift; echo "pretrain_gpu: $*" >&2; exit "$code"; }
need() { [ "$2" -ge 2 ] || { usage; die 2 "$1 needs a value"; }; }

OUT="pretrain_gpu/$(date -u +%Y%m%dT%H%M%SZ)"
WORK=""
BUDGET_S=540
OBJECTIVE=siammae
ARCH=resnet18
WIDTH=0.5
BATCH=512
FRAMES=15000
NUM_ENVS=16
DATA=""
PROBE_DATA=""
PROBE_S=180
SEED=0
PY=""
WHEELS=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) need "$1" $#; OUT=$2; shift 2 ;;
    --work) need "$1" $#; WORK=$2; shift 2 ;;
    --budget) need "$1" $#; BUDGET_S=$2; shift 2 ;;
    --objective) need "$1" $#; OBJECTIVE=$2; shift 2 ;;
    --arch) need "$1" $#; ARCH=$2; shift 2 ;;
    --width) need "$1" $#; WIDTH=$2; shift 2 ;;
    --batch-size) need "$1" $#; BATCH=$2; shift 2 ;;
    --frames-per-game) need "$1" $#; FRAMES=$2; shift 2 ;;
    --num-envs) need "$1" $#; NUM_ENVS=$2; shift 2 ;;
    --data) need "$1" $#; DATA=$2; shift 2 ;;
    --probe-data) need "$1" $#; PROBE_DATA=$2; shift 2 ;;
    --probe-seconds) need "$1" $#; PROBE_S=$2; shift 2 ;;
    --seed) need "$1" $#; SEED=$2; shift 2 ;;
    --python) need "$1" $#; PY=$2; shift 2 ;;
    --wheels) need "$1" $#; WHEELS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die 2 "unknown argument '$1'" ;;
  esac
done
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die 2 "$1 must be a positive integer, not '$2'"; }
positive --budget "$BUDGET_S"
positive --batch-size "$BATCH"
positive --frames-per-game "$FRAMES"
positive --num-envs "$NUM_ENVS"
positive --probe-seconds "$PROBE_S"
[[ "$SEED" =~ ^[0-9]+$ ]] || die 2 "--seed must be a non-negative integer, not '$SEED'"
[ "$BATCH" -ge 2 ] || die 2 "--batch-size must be at least 2, not '$BATCH'"
case "$ARCH" in
  resnet18|resnet34|resnet50) ;;
  *) die 2 "--arch must be resnet18, resnet34 or resnet50, not '$ARCH'" ;;
esac
[[ "$WIDTH" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ && ! "$WIDTH" =~ ^[0.]+$ ]] \
  || die 2 "--width must be a positive number (e.g. 0.5), not '$WIDTH'"
[[ "$OBJECTIVE" =~ ^[a-z][a-z0-9_-]*$ ]] || die 2 "--objective must be a name such as siammae, not '$OBJECTIVE'"
[ "$BUDGET_S" -ge $((PROBE_S + 240)) ] \
  || die 2 "--budget $BUDGET_S leaves under 240 s beside the probe's $PROBE_S s (--probe-seconds)"
# Paths given on the command line are relative to where the script was called from (it runs in the repo root).
abs() { if [[ "$1" = /* ]]; then echo "$1"; else echo "$CALLER/$1"; fi; }
OUT=$(abs "$OUT")
OUT=${OUT%/}
[ -n "$WORK" ] && WORK=$(abs "$WORK") || WORK="$OUT.work"
if [ -n "$DATA" ]; then
  DATA=$(abs "$DATA")
  [ -f "$DATA/manifest.json" ] || die 2 "--data '$DATA' is not a prend collect folder (no manifest.json)"
fi
if [ -n "$PROBE_DATA" ]; then
  PROBE_DATA=$(abs "$PROBE_DATA")
  [ -f "$PROBE_DATA/manifest.json" ] \
    || die 2 "--probe-data '$PROBE_DATA' is not a prend collect folder (no manifest.json)"
fi
if [ -n "$WHEELS" ]; then
  WHEELS=$(abs "$WHEELS")
  compgen -G "$WHEELS/*.whl" >/dev/null || die 2 "--wheels '$WHEELS' holds no .whl files"
fi
[[ -z "$PY" || "$PY" = /* || "$PY" != */* ]] || PY="$CALLER/$PY"

# 1. The GPU itself, before anything is installed or run.
command -v nvidia-smi >/dev/null 2>&1 \
  || die 3 "no NVIDIA GPU: nvidia-smi is not on PATH. This recipe needs a GPU and never falls back to the CPU."
GPUS=$(nvidia-smi -L 2>&1) || die 3 "nvidia-smi failed (driver not loaded?): ${GPUS//$'\n'/ }"
grep -q '^GPU ' <<<"$GPUS" || die 3 "nvidia-smi lists no GPU: ${GPUS//$'\n'/ }"
GPU=$(head -n1 <<<"$GPUS")
echo "pretrain_gpu: $GPU"

# 2. The interpreter, its packages and its torch.
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
command -v "$PY" >/dev/null 2>&1 || die 4 "the interpreter '$PY' is not an executable (pass --python)"
SITE=""
if [ -n "$WHEELS" ]; then
  SITE="$WORK/site"
  mkdir -p "$SITE"
  echo "pretrain_gpu: installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || die 4 "installing the wheels of $WHEELS failed (see above)"
fi
export PYTHONPATH="$PWD/src${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# Prints torch's version and CUDA build; succeeds only when torch can use the GPU (as in gpu_check.sh).
CUDA_PROBE='import sys, torch; print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}"); sys.exit(0 if torch.cuda.is_available() else 1)'
if ! TORCH_DESC=$("$PY" -c "$CUDA_PROBE" 2>&1); then
  TORCH_DESC=$(tail -n1 <<<"$TORCH_DESC")
  die 4 "the GPU is there but torch cannot use it ($TORCH_DESC; torch.cuda.is_available() is False);" \
        "pass --python with a CUDA build of torch. Not running on the CPU."
fi
echo "pretrain_gpu: $TORCH_DESC"
# Prints the modules prend needs that the interpreter cannot find; fails when there are any.
DEPS_PROBE='import importlib.util as u, sys
m = [n for n in ("ale_py", "gymnasium", "tyro", "tensorboard", "scipy", "cv2", "tqdm", "matplotlib", "prend")
     if u.find_spec(n) is None]
print(" ".join(m)); sys.exit(1 if m else 0)'
if ! MISSING=$("$PY" -c "$DEPS_PROBE" 2>&1); then
  die 4 "$PY lacks $(tail -n1 <<<"$MISSING"): make wheels here with 'python benchmarks/pretrain_gpu.py wheels" \
        "--dest .whl' and pass --wheels .whl (docs/reproduce.md, Pre-training on a GPU)"
fi

# 3-5. Frames, warm-up, pre-training, export and probe (in Python: benchmarks/pretrain_gpu.py).
mkdir -p "$OUT" "$WORK"
LEFT=$((BUDGET_S - SECONDS))
[ "$LEFT" -ge $((PROBE_S + 200)) ] \
  || die 5 "set-up took ${SECONDS} s of the ${BUDGET_S} s budget; run again (set-up is quicker then) or pass --budget"
ARGS=(run --out "$OUT" --work "$WORK" --budget-s "$LEFT" --objective "$OBJECTIVE" --arch "$ARCH" --width "$WIDTH"
      --batch-size "$BATCH" --frames-per-game "$FRAMES" --num-envs "$NUM_ENVS" --probe-s "$PROBE_S" --seed "$SEED"
      --device cuda --gpu "$GPU")
[ -z "$DATA" ] || ARGS+=(--data "$DATA")
[ -z "$PROBE_DATA" ] || ARGS+=(--probe-data "$PROBE_DATA")
[ ${#EXTRA[@]} -eq 0 ] || ARGS+=(-- "${EXTRA[@]}")
exec "$PY" benchmarks/pretrain_gpu.py "${ARGS[@]}"
