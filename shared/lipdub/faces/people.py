"""Everyone on screen, followed through each shot: the analysis for casting, where the
single-person pass (track.py) follows one chosen face. Faces are detected on every cut
and every `detect_every` frames, linked to the people already in the shot by box overlap
(a one-to-one assignment), and their boxes interpolated between detections. A person's
track never crosses a cut: who is who across shots is the casting's question."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from lipdub.faces.boxes import Detection, iou
from lipdub.faces.detect import FaceDetector
from lipdub.faces.shots import CutDetector
from lipdub.faces.track import SMALL_WIDTH, shrink

_SAME_PERSON_IOU = 0.2


@dataclass
class People:
    """Per-person boxes: boxes[p, i] is person p's face in frame i (NaN where absent).
    Each person lives in one shot."""

    boxes: np.ndarray  # (people, frames, 4) float32
    shot_of_person: np.ndarray  # (people,) int32
    shot: np.ndarray  # (frames,) int32
    frame_size: tuple[int, int]  # (height, width)

    @property
    def count(self) -> int:
        return len(self.boxes)

    def present(self, person: int) -> np.ndarray:
        return ~np.isnan(self.boxes[person, :, 0])


class _Linker:
    """The people of the current shot and their sightings (frame, box)."""

    def __init__(self) -> None:
        self.sightings: list[list[tuple[int, np.ndarray]]] = []
        self.shots: list[int] = []
        self._live: list[int] = []  # people of the current shot

    def new_shot(self) -> None:
        self._live = []

    def add(self, frame: int, shot: int, detections: list[Detection]) -> None:
        last = [self.sightings[p][-1][1] for p in self._live]
        matched: set[int] = set()
        if last and detections:
            overlap = np.array([[iou(d.box, b) for b in last] for d in detections])
            for d, p in zip(*linear_sum_assignment(-overlap), strict=True):
                if overlap[d, p] >= _SAME_PERSON_IOU:
                    self.sightings[self._live[p]].append((frame, d_box(detections[d])))
                    matched.add(int(d))
        for d, detection in enumerate(detections):
            if d not in matched:
                self._live.append(len(self.sightings))
                self.sightings.append([(frame, d_box(detection))])
                self.shots.append(shot)


def d_box(detection: Detection) -> np.ndarray:
    return detection.box.astype(np.float32).copy()


def track_people(frames: Iterable[np.ndarray], frame_count: int, detect_every: int = 5,
                 on_frame: Callable[[int, np.ndarray], None] | None = None) -> People:
    """One streaming pass: every face in every shot, as a box per frame."""
    shots = np.zeros(frame_count, np.int32)
    cuts, linker, detector = CutDetector(), _Linker(), FaceDetector()
    shot, last_detect, size, seen = -1, -detect_every, (0, 0), 0
    try:
        for i, rgb in enumerate(frames):
            if i >= frame_count:
                break
            seen, size = i + 1, rgb.shape[:2]
            if cuts.is_cut(shrink(rgb, SMALL_WIDTH)):
                shot += 1
                linker.new_shot()
                last_detect = -detect_every
            shots[i] = shot
            if i - last_detect >= detect_every:
                linker.add(i, shot, detector.detect(rgb))
                last_detect = i
            if on_frame is not None:
                on_frame(i, rgb)
    finally:
        detector.close()
    return People(_boxes(linker.sightings, shots[:seen], detect_every),
                  np.array(linker.shots, np.int32), shots[:seen], size)


def _boxes(sightings: list[list[tuple[int, np.ndarray]]], shots: np.ndarray,
           detect_every: int) -> np.ndarray:
    """Each person's box on every frame from their first sighting to their last (and the
    detection interval after it, within the shot), interpolated between sightings."""
    boxes = np.full((len(sightings), len(shots), 4), np.nan, np.float32)
    for person, seen in enumerate(sightings):
        frames = np.array([f for f, _ in seen])
        at = np.stack([b for _, b in seen])
        shot = shots[frames[0]]
        last = min(len(shots), frames[-1] + detect_every)
        span = np.arange(frames[0], last)
        span = span[shots[span] == shot]
        for c in range(4):
            boxes[person, span, c] = np.interp(span, frames, at[:, c])
    return boxes
