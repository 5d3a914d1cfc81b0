#!/usr/bin/env bash
# The whole test suite: set up (idempotent), lint, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check shared tests benchmarks
exec .venv/bin/python -m pytest "$@"
