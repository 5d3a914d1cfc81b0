"""Talking clips made in code: scikit-image's astronaut photo (a real face), placed in a
frame, its mouth animated by an audio track, with gentle head motion."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from lipdub.composite import composite
from lipdub.engines.warp.articulation import articulation_track
from lipdub.engines.warp.engine import reanimate
from lipdub.engines.warp.interior import capture_reference
from lipdub.engines.warp.landmarks import LandmarkTracker
from lipdub.media.encode import DubWriter, aac_sound

# The face in skimage's 512x512 astronaut photo spans about rows 95-215.
_PHOTO_FACE_HEIGHT = 120


@dataclass(frozen=True)
class ClipSpec:
    width: int = 1280
    height: int = 720
    fps: Fraction = Fraction(25)
    face_height: int = 260  # pixels, brow to chin
    face_centre: tuple[float, float] = (0.5, 0.45)  # of the frame
    yaw_degrees: float = 0.0  # turn the face by a perspective warp of the photo
    head_motion: bool = True
    no_face: bool = False  # a clip with nothing face-like in it


def _background(width: int, height: int) -> np.ndarray:
    from skimage import data

    coffee = cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(coffee, (0, 0), 6)


def _photo(spec: ClipSpec) -> np.ndarray:
    from skimage import data

    photo = data.astronaut()
    if spec.yaw_degrees:
        # Foreshorten one side of the face as a turned head does (approximately).
        h, w = photo.shape[:2]
        k = np.sin(np.radians(abs(spec.yaw_degrees))) * 0.35
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        near, far = 0.0, k * h * 0.25
        if spec.yaw_degrees > 0:
            dst = np.float32([[0, near], [w * (1 - k), far], [w * (1 - k), h - far], [0, h]])
        else:
            dst = np.float32([[w * k, far], [w, near], [w, h], [w * k, h - far]])
        matrix = cv2.getPerspectiveTransform(src, dst)
        photo = cv2.warpPerspective(photo, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return photo


def base_frame(spec: ClipSpec) -> np.ndarray:
    frame = _background(spec.width, spec.height)
    if spec.no_face:
        return frame
    photo = _photo(spec)
    scale = spec.face_height / _PHOTO_FACE_HEIGHT
    photo = cv2.resize(photo, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    # Centre the face (about x=240, y=150 in the photo) on the requested point.
    cx, cy = int(spec.face_centre[0] * spec.width), int(spec.face_centre[1] * spec.height)
    ox, oy = cx - int(240 * scale), cy - int(150 * scale)
    h, w = photo.shape[:2]
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(spec.width, ox + w), min(spec.height, oy + h)
    frame[y0:y1, x0:x1] = photo[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return frame


def _head_motion(k: int, fps: float, width: int, height: int) -> np.ndarray:
    t = k / fps
    angle = 1.2 * np.sin(2 * np.pi * 0.23 * t) + 0.5 * np.sin(2 * np.pi * 0.61 * t + 1)
    dx = 6 * np.sin(2 * np.pi * 0.17 * t) + 2 * np.sin(2 * np.pi * 0.9 * t)
    dy = 3 * np.sin(2 * np.pi * 0.29 * t + 2)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += (dx, dy)
    return matrix


def iter_talking_frames(spec: ClipSpec, audio_16k: np.ndarray, frame_count: int):
    """Frames of the face 'speaking' `audio_16k` (mouth driven by its articulation)."""
    base = base_frame(spec)
    fps = float(spec.fps)
    shape = None
    teeth = None
    if not spec.no_face:
        tracker = LandmarkTracker(smoothing=0.0, static=True)
        cx, cy = spec.face_centre[0] * spec.width, spec.face_centre[1] * spec.height
        r = spec.face_height
        box = (max(0, int(cx - r)), max(0, int(cy - r)), min(spec.width, int(cx + r)),
               min(spec.height, int(cy + r)))
        shape = tracker.measure(base, box)
        tracker.close()
        if shape is None:
            raise RuntimeError("Face Mesh found no face in the sample photo")
        teeth = capture_reference(base, shape)  # the photo's own smile shows teeth
    track = articulation_track(audio_16k, fps, frame_count)
    for k in range(frame_count):
        frame = base
        if shape is not None:
            patch = reanimate(base, shape, float(track.openness[k]), float(track.width[k]), teeth)
            if patch is not None:
                frame = composite(base, patch)
        if spec.head_motion:
            frame = cv2.warpAffine(frame, _head_motion(k, fps, spec.width, spec.height),
                                   (spec.width, spec.height), borderMode=cv2.BORDER_REFLECT)
        yield frame


@dataclass(frozen=True)
class Shot:
    """One shot of a multi-shot clip: its framing, length, and a colour cast of its own (so
    that every cut is a cut)."""

    spec: ClipSpec
    seconds: float
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


def write_multishot_clip(path: Path, shots: list[Shot], audio_16k: np.ndarray) -> Path:
    """An MP4 of several shots cut together (all at the first shot's size and rate), the
    face in each speaking its part of `audio_16k`, which is the clip's sound track."""
    first = shots[0].spec
    fps = float(first.fps)
    counts = [max(1, round(shot.seconds * fps)) for shot in shots]
    total = sum(counts)
    up = np.interp(np.arange(len(audio_16k) * 3) / 3, np.arange(len(audio_16k)), audio_16k)
    with DubWriter(path, first.width, first.height, first.fps,
                   aac_sound(iter([np.stack([up, up]).astype(np.float32)]), total / fps),
                   total, crf=20) as writer:
        done = 0
        for shot, count in zip(shots, counts, strict=True):
            part = audio_16k[round(done / fps * 16_000):round((done + count) / fps * 16_000)]
            tint = np.array(shot.tint, np.float32)
            for frame in iter_talking_frames(shot.spec, part, count):
                writer.write(np.clip(frame * tint, 0, 255).astype(np.uint8))
            done += count
    return path


def write_talking_clip(path: Path, spec: ClipSpec, audio_16k: np.ndarray,
                       audio_48k_stereo: np.ndarray | None = None) -> Path:
    """An MP4 of the face speaking `audio_16k`, with that audio as its sound track."""
    fps = float(spec.fps)
    frame_count = max(1, round(len(audio_16k) / 16_000 * fps))
    if audio_48k_stereo is None:
        up = np.interp(np.arange(len(audio_16k) * 3) / 3, np.arange(len(audio_16k)), audio_16k)
        audio_48k_stereo = np.stack([up, up]).astype(np.float32)
    with DubWriter(path, spec.width, spec.height, spec.fps,
                   aac_sound(iter([audio_48k_stereo]), frame_count / fps),
                   frame_count, crf=20) as writer:
        for frame in iter_talking_frames(spec, audio_16k, frame_count):
            writer.write(frame)
    return path
