#!/usr/bin/env bash
# The test suite: set up, lint, then every test (including doctests in src/prend).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests of `prend sweep --backend ray` need Ray (the `ray` extra), the cross-check of the IQM bootstrap needs
# rliable (the `rliable` extra); PREND_EXTRAS= installs neither (those tests then skip).
PREND_EXTRAS=${PREND_EXTRAS-ray,rliable} bash scripts/setup_env.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
