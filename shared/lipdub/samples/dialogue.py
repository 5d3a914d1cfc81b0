"""Two people in conversation, made in code (for tests and benchmarks of casting): two real
faces side by side (scikit-image's astronaut photo, and the same photo mirrored and
recoloured so the two differ), each mouth driven by its own speech-like line, the lines
taking turns, the sound track their mix. Shots cut between framings of the pair."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.audio.load import FEATURE_RATE
from lipdub.composite import composite
from lipdub.engines.warp.articulation import articulation_track
from lipdub.engines.warp.engine import reanimate
from lipdub.engines.warp.interior import capture_reference
from lipdub.engines.warp.landmarks import FaceShape, LandmarkTracker
from lipdub.media.encode import DubWriter, aac_sound
from lipdub.samples.speech import SpeechSpec, speech_like
from lipdub.samples.talking import ClipSpec, base_frame

TINTS = ((1.0, 1.0, 1.0), (1.2, 0.9, 0.7), (0.75, 0.9, 1.2))  # each shot's colour cast


@dataclass(frozen=True)
class DialogueSpec:
    width: int = 640
    height: int = 360
    fps: Fraction = Fraction(25)
    face_height: int = 110
    turn_seconds: tuple[float, ...] = (1.6, 1.4, 1.8, 1.2, 1.6, 1.4)  # A, B, A, B, ...
    cuts: tuple[float, ...] = (3.0, 6.2)  # seconds where the shot changes (framing, tint)
    seed: int = 3

    @property
    def seconds(self) -> float:
        return float(sum(self.turn_seconds))


@dataclass(frozen=True)
class Dialogue:
    path: Path
    lines: tuple[np.ndarray, np.ndarray]  # each speaker's line, 16 kHz (silent off turn)
    speaker: np.ndarray  # per frame: 0 or 1, who is speaking (-1: a pause in the line)
    centres: tuple[np.ndarray, np.ndarray]  # per frame: each face's centre (x, y) in pixels


def dialogue_lines(spec: DialogueSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each speaker's line (speech on their turns, silence on the other's) and the turn
    owner per sample. Another seed gives other lines on the same turns: a dub's new
    lines, said where the originals were."""
    total = round(spec.seconds * FEATURE_RATE)
    lines = np.zeros((2, total), np.float32)
    owner = np.zeros(total, np.int8)
    start = 0
    for turn, seconds in enumerate(spec.turn_seconds):
        count = round(seconds * FEATURE_RATE)
        who = turn % 2
        speech = speech_like(SpeechSpec(seconds=seconds, seed=spec.seed * 100 + turn,
                                        pitch_hz=110 if who == 0 else 190))
        lines[who, start:start + count] = speech[:count]
        owner[start:start + count] = who
        start += count
    return lines[0], lines[1], owner


def _shot_layout(spec: DialogueSpec, shot: int) -> tuple[tuple[float, float], ...]:
    """Where the two faces sit in each shot: the framing changes at every cut."""
    layouts = (((0.28, 0.45), (0.72, 0.45)), ((0.33, 0.5), (0.7, 0.42)),
               ((0.25, 0.42), (0.66, 0.5)))
    return layouts[shot % len(layouts)]


def _pair(spec: DialogueSpec, shot: int) -> tuple[np.ndarray, list[FaceShape], list]:
    """The shot's still frame with both faces, their Face Mesh shapes and teeth."""
    centres = _shot_layout(spec, shot)
    size = ClipSpec(width=spec.width, height=spec.height, face_height=spec.face_height,
                    head_motion=False)
    left = base_frame(replace(size, face_centre=centres[0]))
    # The second person: the photo mirrored (placed so its face lands on its centre) and
    # recoloured, pasted over the right half.
    mirrored_at = (1.0 - centres[1][0], centres[1][1])
    right = base_frame(replace(size, face_centre=mirrored_at))[:, ::-1]
    right = np.clip(right.astype(np.float32) * np.array([0.85, 0.95, 1.12]), 0, 255)
    frame = left.copy()
    split = int(spec.width * (centres[0][0] + centres[1][0]) / 2)
    frame[:, split:] = right.astype(np.uint8)[:, split:]
    frame = np.ascontiguousarray(frame)
    tracker = LandmarkTracker(static=True)
    shapes, teeth = [], []
    try:
        for cx, cy in centres:
            x, y, r = cx * spec.width, cy * spec.height, spec.face_height
            box = (int(max(0, x - r)), int(max(0, y - r)), int(min(spec.width, x + r)),
                   int(min(spec.height, y + r)))
            shape = tracker.measure(frame, box)
            tracker.reset()
            if shape is None:
                raise RuntimeError("Face Mesh found no face in the dialogue's still")
            shapes.append(shape)
            teeth.append(capture_reference(frame, shape))
    finally:
        tracker.close()
    return frame, shapes, teeth


def write_dialogue(path: Path, spec: DialogueSpec = DialogueSpec()) -> Dialogue:
    """The clip (H.264 + AAC: the two lines mixed) and what is true about it."""
    line_a, line_b, owner = dialogue_lines(spec)
    fps = float(spec.fps)
    count = round(spec.seconds * fps)
    tracks = [articulation_track(line, fps, count) for line in (line_a, line_b)]
    shot_of = np.searchsorted(np.array(spec.cuts) * fps, np.arange(count), side="right")
    speaker = np.full(count, -1, np.int8)
    centres = (np.zeros((count, 2), np.float32), np.zeros((count, 2), np.float32))
    mix = line_a + line_b
    up = np.interp(np.arange(len(mix) * 3) / 3, np.arange(len(mix)), mix).astype(np.float32)
    stills: dict[int, tuple] = {}
    with DubWriter(path, spec.width, spec.height, spec.fps,
                   aac_sound(iter([np.stack([up, up])]), count / spec.fps), count,
                   crf=20) as writer:
        for k in range(count):
            shot = int(shot_of[k])
            if shot not in stills:
                stills = {shot: _pair(spec, shot)}
            frame, shapes, teeth = stills[shot]
            out = frame
            for who, (shape, reference) in enumerate(zip(shapes, teeth, strict=True)):
                patch = reanimate(frame, shape, float(tracks[who].openness[k]),
                                  float(tracks[who].width[k]), reference)
                if patch is not None:
                    out = composite(out, patch)
                centres[who][k] = shape.points[[33, 263, 61, 291]].mean(axis=0)
            window = slice(round(k / fps * FEATURE_RATE), round((k + 1) / fps * FEATURE_RATE))
            if np.abs(mix[window]).max(initial=0.0) > 0.02:
                speaker[k] = owner[window.start]
            tint = TINTS[shot % len(TINTS)]
            writer.write(np.clip(out * np.array(tint, np.float32), 0, 255).astype(np.uint8))
    return Dialogue(path=path, lines=(line_a, line_b), speaker=speaker, centres=centres)


def face_at(dialogue: Dialogue, frame: int, box: np.ndarray) -> int | None:
    """Which of the two people a box covers at a frame (None: neither)."""
    for who, centre in enumerate(dialogue.centres):
        x, y = centre[frame]
        if box[0] <= x <= box[2] and box[1] <= y <= box[3]:
            return who
    return None

