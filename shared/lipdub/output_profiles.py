"""The output profiles' names (a light module: the CLI and the API read it at start-up)."""

from __future__ import annotations

import enum
from pathlib import Path


class OutputProfile(enum.StrEnum):
    DELIVERY = "delivery"  # H.264 8-bit 4:2:0 + one stereo AAC track in MP4
    MATCH = "match"  # the source's own format: a master for the finishing suite
    PATCH = "patch"  # per changed shot, the face with its matte, and a timeline (OTIO, EDL)


MASTER_SUFFIXES = (".mov", ".mp4", ".m4v", ".mxf")  # containers a master is written in


def master_suffix(source: Path) -> str | None:
    """A master's file extension: its source's own (None: not a container for masters)."""
    suffix = source.suffix.lower()
    return suffix if suffix in MASTER_SUFFIXES else None
