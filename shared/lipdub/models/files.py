"""Checks on model files that need no model library (so they run before any loads)."""

from __future__ import annotations

from pathlib import Path

from lipdub.errors import InputNotFoundError

WAV2LIP_HINT = "Pass --wav2lip-checkpoint with the path of wav2lip.pth or wav2lip_gan.pth."


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise InputNotFoundError(f"{what} '{path}' does not exist.", hint)
    return path
