"""The output profiles' names (a light module: the CLI and the API read it at start-up)."""

from __future__ import annotations

import enum


class OutputProfile(enum.StrEnum):
    DELIVERY = "delivery"  # H.264 8-bit 4:2:0 + one stereo AAC track in MP4
    MATCH = "match"  # the source's own format: a master for the finishing suite
    PATCH = "patch"  # per changed shot, the face with its matte, and a timeline (OTIO, EDL)


MASTER_SUFFIX = {"mov": ".mov", "mxf": ".mxf"}  # a master's container -> its extension
