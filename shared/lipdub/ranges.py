"""Dubbing only the ranges asked for: a re-recorded line, not the whole film. A range is
given in seconds (`12.5-14`), frames (`300f-350f`) or SMPTE timecode at the video's rate
(`00:00:12:12-00:00:14:00`); frames outside every range pass through untouched, and each
range fades the new mouth in and out over RAMP_FRAMES frames (no pop at its edges)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lipdub.errors import BadOptionError

RAMP_FRAMES = 4

_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_FRAMES = re.compile(r"^(\d+)f$")
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;](\d{2})$")
# The whole grammar, for request schemas (which check the form before any video is seen).
_POINT = r"(?:\d{1,7}(?:\.\d{1,6})?|\d{1,9}f|\d{1,2}:\d{2}:\d{2}[:;]\d{2})"
RANGE_PATTERN = rf"^{_POINT}-{_POINT}$"


@dataclass(frozen=True)
class FrameRange:
    start: int  # output frames [start, stop)
    stop: int


def _point(text: str, fps: Fraction, what: str) -> int:
    """One end of a range, as an output frame number."""
    text = text.strip()
    if match := _FRAMES.match(text):
        return int(match.group(1))
    if _SECONDS.match(text):
        return round(float(text) * fps)
    if match := _TIMECODE.match(text):
        hours, minutes, seconds, frames = (int(g) for g in match.groups())
        rate = round(fps)
        if frames >= rate or minutes >= 60 or seconds >= 60:
            raise BadOptionError(
                f"{what} '{text}' is not a timecode at this video's {float(fps):g} frames/s "
                f"(frames run 00-{rate - 1:02d}).",
                "Give the timecode at the video's own rate, or use seconds or frames.")
        return ((hours * 60 + minutes) * 60 + seconds) * rate + frames
    raise BadOptionError(f"{what} '{text}' is not understood.",
                         "Use seconds (12.5), frames (300f) or timecode (00:00:12:12).")


def _ends(spec: str, what: str) -> tuple[str, str]:
    ends = spec.split("-")
    if len(ends) != 2:
        raise BadOptionError(f"{what} '{spec}' is not START-END.",
                             "Write it as 12.5-14, 300f-350f or 00:00:12:12-00:00:14:00.")
    return ends[0], ends[1]


def _check_order(start: float, stop: float, spec: str, what: str) -> None:
    if stop <= start:
        raise BadOptionError(f"{what} '{spec}' ends before it starts.",
                             "Give the earlier point first.")


def parse_ranges(specs: list[str], fps: Fraction,
                 frame_count: int | None = None) -> list[FrameRange]:
    """`START-END` each; sorted, and checked: non-empty, not overlapping one another, and
    inside the output when its length is known (the dub checks again once it is)."""
    ranges = []
    for n, spec in enumerate(specs, start=1):
        what = f"range {n}"
        start, stop = (_point(part, fps, what) for part in _ends(spec, what))
        _check_order(start, stop, spec, what)
        ranges.append(FrameRange(start, stop))
    ranges.sort(key=lambda r: r.start)
    if frame_count is not None:
        check_inside(ranges, frame_count, fps)
    for a, b in zip(ranges, ranges[1:], strict=False):
        if b.start < a.stop:
            raise BadOptionError(
                f"Ranges overlap: frames {a.start}-{a.stop} and {b.start}-{b.stop}.",
                "Give each frame to one range at most (merge or split them).")
    return ranges


def check_without_video(specs: list[str]) -> None:
    """What can be checked before the video is seen: each range that names both ends in
    seconds (or both in frames) ends after it starts and overlaps no other such range."""
    known: list[tuple[float, float, str]] = []
    for n, spec in enumerate(specs, start=1):
        what = f"range {n}"
        ends = _ends(spec, what)
        if all(_SECONDS.match(e) for e in ends):
            start, stop = float(ends[0]), float(ends[1])
        elif all(_FRAMES.match(e) for e in ends):
            start, stop = float(ends[0][:-1]), float(ends[1][:-1])
        else:
            continue
        _check_order(start, stop, spec, what)
        unit = "s" if _SECONDS.match(ends[0]) else "f"
        for a, b, other in known:
            if unit == other and start < b and a < stop:
                raise BadOptionError(f"{what} '{spec}' overlaps an earlier range.",
                                     "Give each frame to one range at most.")
        known.append((start, stop, unit))


def check_inside(ranges: list[FrameRange], frame_count: int, fps: Fraction) -> None:
    rate = float(fps)
    for r in ranges:
        if r.stop > frame_count:
            raise BadOptionError(
                f"The range of frames {r.start}-{r.stop} ({r.start / rate:.2f}-"
                f"{r.stop / rate:.2f} s) runs past the end of the output ({frame_count} "
                f"frames, {frame_count / rate:.2f} s).", "Keep every range inside the output.")


def blend_weights(ranges: list[FrameRange] | None, frame_count: int) -> np.ndarray | None:
    """How much of the new mouth each output frame takes: 1 inside a range, ramping from
    and back to 0 over its first and last RAMP_FRAMES frames, 0 outside; None for no
    ranges (everything dubbed)."""
    if ranges is None:
        return None
    weights = np.zeros(frame_count, np.float32)
    for r in ranges:
        length = r.stop - r.start
        ramp = min(RAMP_FRAMES, length // 2)
        inside = np.ones(length, np.float32)
        if ramp:
            steps = np.arange(1, ramp + 1, dtype=np.float32) / (ramp + 1)
            inside[:ramp] = steps
            inside[length - ramp:] = steps[::-1]
        weights[r.start:r.stop] = inside
    return weights
