#!/usr/bin/env bash
# Create .venv (if missing) and install prend into it, one line per phase.
#
# PREND_TORCH picks the torch build (the version is always constraints.txt's pin):
#   pinned (default)  torch==<pin> from the indexes pip is configured with; pinning the version keeps pip from
#                     resolving an unpinned build (on PyPI for Linux x86_64 that is the multi-GB CUDA build)
#   cpu               the CPU-only build, from PyTorch's CPU index (https://download.pytorch.org/whl/cpu)
#   cuda              the CUDA build: PyPI's Linux build, or the index in PREND_TORCH_INDEX
#                     (e.g. https://download.pytorch.org/whl/cu128 for one CUDA version)
# PREND_EXTRAS adds extras of the package (e.g. ray); PYTHON names the interpreter (>= 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH=${PREND_TORCH:-pinned}
PIN=$(grep -E '^torch==' constraints.txt)
case "$TORCH" in
  pinned) TORCH_INDEX=() ;;
  cpu) TORCH_INDEX=(--index-url "${PREND_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}") ;;
  cuda) TORCH_INDEX=(--index-url "${PREND_TORCH_INDEX:-https://pypi.org/simple}") ;;
  *) echo "setup: PREND_TORCH must be pinned, cpu or cuda (got '$TORCH')" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
echo "setup: upgrading pip"
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing $PIN ($TORCH build; a first install downloads ~0.2 GB for CPU, several GB for CUDA)"
.venv/bin/python -m pip install -q -c constraints.txt ${TORCH_INDEX[@]+"${TORCH_INDEX[@]}"} torch
echo "setup: installing prend and its dependencies (editable, extras: dev${PREND_EXTRAS:+,$PREND_EXTRAS})"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev${PREND_EXTRAS:+,$PREND_EXTRAS}]"
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'); .venv is $(du -sh .venv | cut -f1))"
