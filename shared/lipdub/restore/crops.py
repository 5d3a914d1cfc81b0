"""Aligned face crops of one person from footage, reusing the core's detection and tracking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from lipdub.errors import LipDubError
from lipdub.faces.crop import crop_box
from lipdub.faces.select import FaceSelector
from lipdub.faces.track import analyse_faces
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video

MIN_FRAMES = 24


class NotEnoughFacesError(LipDubError):
    code = "not_enough_faces"


def working_resolution(face_side: float) -> int:
    """The restorer's working resolution for faces of this size (crop side, pixels): never
    upscale much, since there is no detail to restore that the footage does not have."""
    for resolution in (128, 256):
        if face_side < resolution * 1.5:
            return resolution
    return 512


def extract_crops(
    videos: list[Path],
    resolution: int | None = None,
    max_crops: int = 4000,
    selector: FaceSelector | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(N, R, R, 3) uint8 crops evenly sampled over all usable face frames, and R (chosen
    from the face size when not given)."""
    selector = selector or FaceSelector(mode="largest")
    tracks = []
    for video in videos:
        info = probe_video(video)
        tracks.append((info, analyse_faces(iter_frames(info), info.frame_count, selector)))
    usable = sum(int(t.has_face.sum()) for _, t in tracks)
    if usable < MIN_FRAMES:
        raise NotEnoughFacesError(
            f"Only {usable} frames with a usable face were found in "
            f"{', '.join(str(v) for v in videos)}; training needs at least {MIN_FRAMES}.",
            "Give more footage of this person, facing the camera.",
        )
    if resolution is None:
        sides = [float(np.nanmedian(t.boxes[t.has_face, 3] - t.boxes[t.has_face, 1]))
                 for _, t in tracks if t.has_face.any()]
        resolution = working_resolution(float(np.median(sides)))
    step = max(1, usable // max_crops)
    crops: list[np.ndarray] = []
    seen = 0
    for info, track in tracks:
        for i, frame in enumerate(iter_frames(info)):
            if not track.has_face[i]:
                continue
            seen += 1
            if seen % step:
                continue
            box = crop_box(track.boxes[i], frame.shape[:2])
            if box is None:
                continue
            x0, y0, x1, y1 = box
            crops.append(cv2.resize(frame[y0:y1, x0:x1], (resolution, resolution),
                                    interpolation=cv2.INTER_AREA))
            if on_progress is not None:
                on_progress(len(crops), min(max_crops, usable // step))
            if len(crops) >= max_crops:
                break
    return np.stack(crops), resolution
