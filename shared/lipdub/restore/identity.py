"""Identities: a named person with trained restorers, stored as versions on disk.

    <root>/<name>/v<N>/restorer.pt     the SOVQAE weights and config
    <root>/<name>/v<N>/identity.json   config, training summary, evaluation, search table
    <root>/<name>/v<N>/metrics.jsonl   the training log

A version is written into a temporary folder and renamed into place only when complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lipdub.errors import InputNotFoundError
from lipdub.restore.gate import Evaluation, rejection
from lipdub.restore.model import SOVQAE, load_sovqae, save_sovqae
from lipdub.restore.names import check_name


@dataclass(frozen=True)
class IdentityVersion:
    name: str
    version: int
    path: Path

    @property
    def info(self) -> dict:
        return json.loads((self.path / "identity.json").read_text())

    def load(self, device: str = "cpu") -> SOVQAE:
        return load_sovqae(self.path / "restorer.pt", device)

    @property
    def rejection(self) -> list[str]:
        return rejection(self.info)


class IdentityStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self, name: str) -> list[IdentityVersion]:
        folder = self.root / check_name(name)
        found = []
        for p in folder.glob("v*"):
            if p.is_dir() and p.name[1:].isdigit() and (p / "restorer.pt").exists():
                found.append(IdentityVersion(name, int(p.name[1:]), p))
        return sorted(found, key=lambda v: v.version)

    def latest(self, name: str) -> IdentityVersion:
        versions = self.versions(name)
        if not versions:
            raise InputNotFoundError(
                f"No identity named '{name}' in {self.root}.",
                "Train it first: lipdub identity train --video A.mp4 --name " + name,
            )
        return versions[-1]

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def save(self, name: str, model: SOVQAE, info: dict, metrics_log: Path | None) -> (
            IdentityVersion):
        folder = self.root / check_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        existing = self.versions(name)
        version = existing[-1].version + 1 if existing else 1
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            save_sovqae(model, staging / "restorer.pt")
            (staging / "identity.json").write_text(json.dumps(
                {"name": name, "version": version, **info}, indent=2, default=_jsonable))
            if metrics_log is not None and metrics_log.exists():
                shutil.copy(metrics_log, staging / "metrics.jsonl")
            final = folder / f"v{version}"
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return IdentityVersion(name, version, final)

    def delete(self, name: str) -> None:
        self.latest(name)  # a clear error when it does not exist
        shutil.rmtree(self.root / name)


def _jsonable(value: object) -> object:
    if isinstance(value, Evaluation):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in identity.json")
