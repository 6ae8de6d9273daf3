#!/usr/bin/env bash
# Create .venv (if missing) and install prend into it. torch is pinned through constraints.txt so pip
# never resolves an unpinned (multi-GB CUDA) build; the package metadata itself keeps a normal range.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt torch
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev${PREND_EXTRAS:+,$PREND_EXTRAS}]"
