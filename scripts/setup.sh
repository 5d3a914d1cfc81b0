#!/usr/bin/env bash
# Idempotent set-up: a .venv at the repo root with the pinned dependency set and lipdub itself.
# Everything comes from wheels (FFmpeg inside PyAV, face models inside mediapipe), so no root
# and no apt packages are needed. Safe to re-run: it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "lipdub needs Python 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.lipdub-lock.sha256
want=$(cat requirements/lock.txt requirements/constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing pinned dependencies (first run takes a few minutes)"
  # pip's own output (build-backend warnings, mirror notes) is shown only when a step
  # fails, and then in full: our progress lines and real errors are all a user sees.
  quiet() {
    local log status=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
      echo "setup failed: $*" >&2
      cat "$log" >&2
    fi
    rm -f "$log"
    return "$status"
  }
  quiet .venv/bin/python -m pip install -q --upgrade "pip>=24"
  quiet .venv/bin/python -m pip install -q -c requirements/constraints.txt -r requirements/lock.txt
  echo "==> installing lipdub itself"
  quiet .venv/bin/python -m pip install -q --no-deps -e .
  quiet .venv/bin/python -m pip check
  echo "$want" > "$stamp"
fi
