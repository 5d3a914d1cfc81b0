#!/usr/bin/env bash
# The main job on the embedded defaults: set up (idempotent), then really dub the demo clip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lipdub demo --out "${1:-out/demo}"
