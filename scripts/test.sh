#!/usr/bin/env bash
# The test suite: set up, lint, then every test (including doctests in src/prend).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
