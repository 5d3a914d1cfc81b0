"""Scratch folders in the system's temp folder, named after the process that made them
(`lipdub-<kind>-<pid>-...`): a process that is killed (SIGKILL, out of memory) cannot clean
up after itself, so the next worker to start removes the folders of processes that are gone."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"^lipdub-[a-z]+-(\d+)-")


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for `kind` of work (job, frames, train), removed on exit."""
    return tempfile.TemporaryDirectory(prefix=f"lipdub-{kind}-{os.getpid()}-")


def remove_dead_scratch(root: Path | None = None) -> int:
    """Remove scratch folders (and files) whose process no longer runs; returns how many."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob("lipdub-*-*-*"):
        match = _NAME.match(path.name)
        if match and not _alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
