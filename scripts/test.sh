#!/usr/bin/env bash
# The test suite: set up, lint, then every test (including doctests in src/prend).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests of `prend sweep --backend ray` need Ray (the `ray` extra); PREND_EXTRAS= skips it (those tests skip).
PREND_EXTRAS=${PREND_EXTRAS-ray} bash scripts/setup_env.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
