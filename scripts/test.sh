#!/usr/bin/env bash
# The test suite: set up, lint, then every test (including doctests in src/prend).
# Tests run in PREND_TEST_WORKERS processes (default 2, pytest-xdist, a file per worker at a time: a file's
# module fixtures are made once); `bash scripts/test.sh -n 0` runs them in this one process. Other arguments go
# to pytest. What it costs and why it is safe to parallelise: docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests of `prend sweep --backend ray` need Ray (the `ray` extra), the cross-check of the IQM bootstrap needs
# rliable (the `rliable` extra); PREND_EXTRAS= installs neither (those tests then skip).
PREND_EXTRAS=${PREND_EXTRAS-ray,rliable} bash scripts/setup_env.sh
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/python -m pytest -n "${PREND_TEST_WORKERS:-2}" --dist loadfile "$@"
