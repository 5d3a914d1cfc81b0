"""Dubbing only the ranges asked for: a re-recorded line, not the whole film. A range is
given in seconds (`12.5-14`), frames (`300f-350f`) or SMPTE timecode at the video's rate
(`00:00:12:12-00:00:14:00`); frames outside every range pass through untouched, and each
range fades the new mouth in and out over RAMP_FRAMES frames (no pop at its edges)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

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
    character: str | None = None  # a cast's: only this character's face (None: all)
    audio: Path | None = None  # its own line (a re-take), heard from the range's start


# A range as a request gives it: "START-END", or {"range": "START-END", "character": NAME,
# "audio": LINE} (both optional).
RangeSpec = str | dict
RANGE_FIELDS = frozenset({"range", "character", "audio"})


def _parts(spec: RangeSpec, what: str) -> tuple[str, str | None, str | None]:
    if isinstance(spec, str):
        return spec, None, None
    if (isinstance(spec, dict) and isinstance(spec.get("range"), str)
            and set(spec) <= RANGE_FIELDS
            and all(isinstance(spec.get(k), str | None) for k in ("character", "audio"))):
        return spec["range"], spec.get("character"), spec.get("audio")
    raise BadOptionError(f"{what} is not understood: {spec!r}.",
                         'Give "START-END" or {"range": "START-END", "character": NAME, '
                         '"audio": LINE}.')


def _overlapping(a_character: str | None, b_character: str | None) -> bool:
    """Whether two ranges compete for a face: one character's ranges may overlap another's
    (people talk over each other), not their own, and a range for everyone overlaps all."""
    return a_character is None or b_character is None or a_character == b_character


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


def parse_ranges(specs: list[RangeSpec], fps: Fraction, frame_count: int | None = None,
                 locate: Callable[[str, str], Path] = lambda ref, what: Path(ref),
                 ) -> list[FrameRange]:
    """Each range; sorted, and checked: non-empty, not overlapping another for the same
    face, and inside the output when its length is known (the dub checks again once it
    is). `locate(reference, what)`: a range's audio as a local file."""
    ranges = []
    for n, spec in enumerate(specs, start=1):
        what = f"range {n}"
        text, character, audio = _parts(spec, what)
        start, stop = (_point(part, fps, what) for part in _ends(text, what))
        _check_order(start, stop, text, what)
        ranges.append(FrameRange(start, stop, character,
                                 locate(audio, what + " audio") if audio else None))
    ranges.sort(key=lambda r: r.start)
    if frame_count is not None:
        check_inside(ranges, frame_count, fps)
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if b.start < a.stop and _overlapping(a.character, b.character):
                raise BadOptionError(
                    f"Ranges overlap: frames {a.start}-{a.stop} and {b.start}-{b.stop}.",
                    "Give each frame of a face to one range at most (merge or split them).")
    return ranges


def ranges_for(ranges: list[FrameRange] | None, character: str | None) -> list | None:
    """The ranges that touch one face: its character's and those for everyone."""
    if ranges is None or character is None:
        return ranges
    return [r for r in ranges if r.character in (None, character)]


def check_without_video(specs: list[RangeSpec]) -> None:
    """What can be checked before the video is seen: each range that names both ends in
    seconds (or both in frames) ends after it starts and overlaps no other such range for
    the same face."""
    known: list[tuple[float, float, str, str | None]] = []
    for n, spec in enumerate(specs, start=1):
        what = f"range {n}"
        text, character, _ = _parts(spec, what)
        ends = _ends(text, what)
        if all(_SECONDS.match(e) for e in ends):
            start, stop = float(ends[0]), float(ends[1])
        elif all(_FRAMES.match(e) for e in ends):
            start, stop = float(ends[0][:-1]), float(ends[1][:-1])
        else:
            continue
        _check_order(start, stop, text, what)
        unit = "s" if _SECONDS.match(ends[0]) else "f"
        for a, b, other, who in known:
            if unit == other and start < b and a < stop and _overlapping(character, who):
                raise BadOptionError(f"{what} '{text}' overlaps an earlier range.",
                                     "Give each frame of a face to one range at most.")
        known.append((start, stop, unit, character))


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


def check_characters(specs: list[RangeSpec], cast: list[str] | None) -> None:
    """A range names a character of the job's cast (a job with no cast has none to name),
    and in a cast's job a range with its own audio says whose line it is."""
    for n, spec in enumerate(specs, start=1):
        what = f"range {n}"
        _, character, audio = _parts(spec, what)
        if character is not None and character not in (cast or []):
            raise BadOptionError(
                f"{what} names the character '{character}', who is not in the cast.",
                "Name a character of the cast, or leave the range's character out.")
        if cast and audio is not None and character is None:
            raise BadOptionError(f"{what} has its own audio but names no character.",
                                 "Say whose line it is: give the range's character.")


def parse_range_option(text: str) -> RangeSpec:
    """The CLI's form START-END[@CHARACTER][=AUDIO], as parse_ranges takes it."""
    head, equals, audio = text.partition("=")
    span, at, character = head.partition("@")
    if not equals and not at:
        return text
    spec = {"range": span}
    if at:
        spec["character"] = character
    if equals:
        spec["audio"] = audio
    return spec
