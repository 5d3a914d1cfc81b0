"""The deployment files (docker-compose.yml, k8s/, the Dockerfile) configure only settings
that exist and start only entry points that exist: a renamed setting or module fails here,
not at a customer's rollout. (No Docker daemon or cluster runs on this machine, so the
files are checked, not deployed.)"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from lipdub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {f"LIPDUB_{name.upper()}" for name in Settings.model_fields}


def _documents() -> list[tuple[str, dict]]:
    docs = [("docker-compose.yml", yaml.safe_load((ROOT / "docker-compose.yml").read_text()))]
    for path in sorted((ROOT / "k8s").rglob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _walk(node: object):  # noqa: ANN202 - yields every dict and list inside
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _setting_names(doc: dict) -> set[str]:
    names: set[str] = set()
    for node in _walk(doc):
        if isinstance(node, dict):
            names |= {k for k in node if isinstance(k, str) and k.startswith("LIPDUB_")}
            if str(node.get("name", "")).startswith("LIPDUB_"):
                names.add(node["name"])
    return names


def _commands(doc: dict) -> list[list[str]]:
    return [node["command"] for node in _walk(doc)
            if isinstance(node, dict) and isinstance(node.get("command"), list)]


def test_every_configured_setting_exists() -> None:
    seen: set[str] = set()
    for name, doc in _documents():
        names = _setting_names(doc)
        assert names <= KNOWN, f"{name} sets unknown settings: {sorted(names - KNOWN)}"
        seen |= names
    assert {"LIPDUB_DATABASE_URL", "LIPDUB_BROKER_URL", "LIPDUB_S3_BUCKET"} <= seen


def test_every_entry_point_exists() -> None:
    commands = [c for _, doc in _documents() for c in _commands(doc)]
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    commands.append(re.findall(r'"([^"]+)"', dockerfile.split("CMD", 1)[1]))
    targets = set()
    for command in commands:
        if command[0] == "uvicorn":
            module, _, attr = command[command.index("--factory") + 1].partition(":")
            assert callable(getattr(importlib.import_module(module), attr)), command
            targets.add("gateway")
        elif command[0] == "celery":
            tasks = importlib.import_module(command[command.index("-A") + 1])
            assert command[command.index("-A") + 2] in ("worker", "beat"), command
            if "--queues" in command:
                queue = command[command.index("--queues") + 1]
                routed = {r["queue"] for r in tasks.app.conf.task_routes.values()}
                assert queue in {"celery", "gpu"} | routed, command
            targets.add(command[command.index("-A") + 2])
        elif command[0] == "lipdub":
            from typer.testing import CliRunner

            from lipdub.cli import app

            assert CliRunner().invoke(app, [*command[1:], "--help"]).exit_code == 0, command
            targets.add("migrate")
    assert targets >= {"gateway", "worker", "beat", "migrate"}


def test_model_serving_deployments_name_what_exists() -> None:
    """Triton is started on models the repository has; the image copies the backend that
    exists; workers are pointed at backends the platform knows."""
    from importlib.metadata import entry_points

    from lipdub.inference.backends import ENTRY_POINT_GROUP, LOCAL

    repository = {p.parent.name for p in (ROOT / "model_repository").glob("*/config.pbtxt")}
    texts = [(ROOT / "docker-compose.yml").read_text(),
             *(p.read_text() for p in (ROOT / "k8s").glob("*.yaml")),
             *(p.read_text() for p in (ROOT / "infra/docker").glob("*Dockerfile"))]
    loaded = {m for text in texts for m in re.findall(r"--load-model=([\w.-]+)", text)}
    assert loaded and loaded <= repository, loaded - repository
    copied = re.findall(r"^COPY (services/\S+)", (ROOT / "infra/docker/triton.Dockerfile")
                        .read_text(), re.MULTILINE)
    assert copied and all((ROOT / path).exists() for path in copied), copied
    schemes = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} | {LOCAL}
    values = [v for text in texts
              for v in re.findall(r"LIPDUB_INFERENCE[=:]\s*(?:\$\{LIPDUB_INFERENCE:-)?"
                                  r"([\w+]+)", text)]
    assert values and set(values) <= schemes, values
