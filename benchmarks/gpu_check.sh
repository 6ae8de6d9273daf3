#!/usr/bin/env bash
# Everything the GPU path needs checked, in one command (under 8 minutes on one H100-class GPU):
#   1. an NVIDIA GPU is there (nvidia-smi) - otherwise stop, exit 3: this script never falls back to the CPU;
#   2. the environment, set up with the README's command (scripts/setup_env.sh) unless .venv already has
#      a CUDA torch; torch must see the GPU - otherwise stop, exit 4;
#   3. a 2-iteration `prend train --device cuda` of each method (rnd, rnd-lr, prend, none) at 8 x 128;
#   4. benchmarks/throughput.py --device cuda: RND and PreND (the shipped compact backbone and a randomly
#      initialised ResNet-50) at 8 x 128 and 128 x 128, with bf16 off and on;
#   5. one Markdown table of all of it (also written to OUT/gpu_check.md); exit 1 if any check failed.
#
# Usage: bash benchmarks/gpu_check.sh [--out DIR] [--torch cuda|pinned|cpu] [--setup auto|yes|no]
#                                     [--python PY] [--wheels DIR] [--iterations N] [--budget S] [--skip-throughput]
#   --out DIR         where runs, records and the table go (default: gpu_check/<UTC time>)
#   --torch KIND      the torch build setup_env.sh installs, passed as PREND_TORCH (default: cuda;
#                     PREND_TORCH_INDEX in the environment picks the index, e.g. one CUDA version's)
#   --setup MODE      auto: run setup_env.sh unless .venv's torch already sees the GPU (default); yes; no
#   --python PY       use this interpreter (with torch, ale-py, gymnasium, tyro) and prend from src/; no setup
#   --wheels DIR      with --python: install DIR/*.whl (no index, no deps) into OUT.work/site and put it on the
#                     path first (the packages a bare GPU machine lacks: python benchmarks/pretrain_gpu.py wheels)
#   --iterations N    timed iterations per throughput row (default 2, after one warm-up)
#   --budget S        seconds for everything, set-up included (default 480); rows measured in time are kept
# Details and what to do with the table: docs/reproduce.md ("The GPU check").
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."

usage() { sed -n '10,21p' "$0" | sed 's/^# \{0,1\}//' >&2; }
die() { local code=$1; shift; echo "gpu_check: $*" >&2; exit "$code"; }

OUT="gpu_check/$(date -u +%Y%m%dT%H%M%SZ)"
OUT_GIVEN=0
TORCH_KIND=cuda
SETUP=auto
PY=""
WHEELS=""
ITERATIONS=2
THROUGHPUT=1
BUDGET_S=480
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { usage; die 2 "--out needs a directory"; }; OUT=$2; OUT_GIVEN=1; shift 2 ;;
    --torch) [ $# -ge 2 ] || { usage; die 2 "--torch needs cuda, pinned or cpu"; }; TORCH_KIND=$2; shift 2 ;;
    --setup) [ $# -ge 2 ] || { usage; die 2 "--setup needs auto, yes or no"; }; SETUP=$2; shift 2 ;;
    --python) [ $# -ge 2 ] || { usage; die 2 "--python needs an interpreter"; }; PY=$2; SETUP=no; shift 2 ;;
    --wheels) [ $# -ge 2 ] || { usage; die 2 "--wheels needs a directory of .whl files"; }; WHEELS=$2; shift 2 ;;
    --iterations) [ $# -ge 2 ] || { usage; die 2 "--iterations needs a number"; }; ITERATIONS=$2; shift 2 ;;
    --budget) [ $# -ge 2 ] || { usage; die 2 "--budget needs seconds"; }; BUDGET_S=$2; shift 2 ;;
    --skip-throughput) THROUGHPUT=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die 2 "unknown argument '$1'" ;;
  esac
done
case "$TORCH_KIND" in cuda|pinned|cpu) ;; *) die 2 "--torch must be cuda, pinned or cpu, not '$TORCH_KIND'" ;; esac
case "$SETUP" in auto|yes|no) ;; *) die 2 "--setup must be auto, yes or no, not '$SETUP'" ;; esac
[[ "$ITERATIONS" =~ ^[1-9][0-9]*$ ]] || die 2 "--iterations must be a positive integer, not '$ITERATIONS'"
[[ "$BUDGET_S" =~ ^[1-9][0-9]*$ ]] || die 2 "--budget must be a positive number of seconds, not '$BUDGET_S'"
# Paths given on the command line are relative to where the script was called from (it runs in the repo root).
[ "$OUT_GIVEN" = 0 ] || [[ "$OUT" = /* ]] || OUT="$CALLER/$OUT"
[[ -z "$PY" || "$PY" = /* || "$PY" != */* ]] || PY="$CALLER/$PY"
if [ -n "$WHEELS" ]; then
  [ -n "$PY" ] || die 2 "--wheels installs into the interpreter of --python; pass --python too (.venv is set up by pip)"
  [[ "$WHEELS" = /* ]] || WHEELS="$CALLER/$WHEELS"
  compgen -G "$WHEELS/*.whl" >/dev/null || die 2 "--wheels '$WHEELS' holds no .whl files"
fi

# 1. The GPU itself, before anything is installed or run.
command -v nvidia-smi >/dev/null 2>&1 \
  || die 3 "no NVIDIA GPU: nvidia-smi is not on PATH. This check needs a GPU and never falls back to the CPU."
GPUS=$(nvidia-smi -L 2>&1) || die 3 "nvidia-smi failed (driver not loaded?): ${GPUS//$'\n'/ }"
grep -q '^GPU ' <<<"$GPUS" || die 3 "nvidia-smi lists no GPU: ${GPUS//$'\n'/ }"
echo "gpu_check: $(head -n1 <<<"$GPUS")"

# 2. The environment.
# Prints torch's version and CUDA build; succeeds only when torch can use the GPU.
CUDA_PROBE='import sys, torch; print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}"); sys.exit(0 if torch.cuda.is_available() else 1)'
cuda_ok() { "$1" -c "$CUDA_PROBE" >/dev/null 2>&1; }
if [ -n "$PY" ]; then
  command -v "$PY" >/dev/null 2>&1 || die 2 "--python '$PY' is not an executable"
  SITE=""
  if [ -n "$WHEELS" ]; then
    SITE="$OUT.work/site"  # beside OUT, not in it: a device tool's OUT comes back, and the wheels need not
    mkdir -p "$SITE"
    echo "gpu_check: installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$WHEELS"/*.whl || die 4 "installing the wheels of $WHEELS failed (see above)"
  fi
  export PYTHONPATH="$PWD/src${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
else
  PY=.venv/bin/python
  if [ "$SETUP" = yes ] || { [ "$SETUP" = auto ] && ! { [ -x "$PY" ] && cuda_ok "$PY"; }; }; then
    echo "gpu_check: PREND_TORCH=$TORCH_KIND bash scripts/setup_env.sh"
    PREND_TORCH=$TORCH_KIND bash scripts/setup_env.sh || die 4 "scripts/setup_env.sh failed (see above)"
  fi
  [ -x "$PY" ] || die 4 "$PY does not exist: run PREND_TORCH=$TORCH_KIND bash scripts/setup_env.sh, or pass --python"
fi
if ! TORCH_DESC=$("$PY" -c "$CUDA_PROBE" 2>&1); then
  TORCH_DESC=$(tail -n1 <<<"$TORCH_DESC")
  die 4 "the GPU is there but torch cannot use it ($TORCH_DESC; torch.cuda.is_available() is False). Install a" \
        "CUDA build (rm -rf .venv; PREND_TORCH=cuda bash scripts/setup_env.sh: pip keeps an installed CPU build)" \
        "or pass --python with one; not running on the CPU."
fi
# Prints the modules prend needs that the interpreter cannot find; fails when there are any.
DEPS_PROBE='import importlib.util as u, sys
m = [n for n in ("ale_py", "gymnasium", "tyro", "tensorboard", "tqdm", "prend") if u.find_spec(n) is None]
print(" ".join(m)); sys.exit(1 if m else 0)'
if ! MISSING=$("$PY" -c "$DEPS_PROBE" 2>&1); then
  die 4 "$PY lacks $(tail -n1 <<<"$MISSING"): make wheels here with 'python benchmarks/pretrain_gpu.py wheels" \
        "--dest .whl' and pass --wheels .whl (docs/reproduce.md, The GPU check)"
fi

# 3-5. Training, throughput and the table (the steps are in Python: benchmarks/gpu_check.py).
mkdir -p "$OUT"
# What is left of the 8 minutes after set-up goes to the steps (bash counts SECONDS from the script's start).
LEFT=$((BUDGET_S - SECONDS))
[ "$LEFT" -ge 60 ] || die 5 "set-up took ${SECONDS} s of the ${BUDGET_S} s budget; run again (set-up is done) or pass --budget"
ARGS=(--out "$OUT" --iterations "$ITERATIONS" --budget-s "$LEFT")
[ "$THROUGHPUT" = 1 ] || ARGS+=(--skip-throughput)
exec "$PY" benchmarks/gpu_check.py "${ARGS[@]}"
