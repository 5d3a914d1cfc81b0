"""Follow one person through a video: detect every N frames and on every cut, track with
optical flow in between, then smooth the boxes within each shot (never across a cut)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub.faces.detect import Detection, FaceDetector, iou
from lipdub.faces.select import FaceSelector
from lipdub.faces.shots import CutDetector
from lipdub.media.ahead import read_ahead

SMALL_WIDTH = 480  # cut detection and optical flow look at frames this wide (downscaled)
_SAME_PERSON_IOU = 0.3


@dataclass
class FaceTrack:
    """Per-frame results of the analysis pass. Small: 24 bytes a frame."""

    boxes: np.ndarray  # (n, 4) float32 x0, y0, x1, y1; NaN where no face
    shot: np.ndarray  # (n,) int32 shot number, starting at 0
    frame_size: tuple[int, int]  # (height, width)

    @property
    def has_face(self) -> np.ndarray:
        return ~np.isnan(self.boxes[:, 0])

    @property
    def frame_count(self) -> int:
        return len(self.boxes)

    @property
    def shot_starts(self) -> np.ndarray:
        starts = np.ones(len(self.shot), dtype=bool)
        starts[1:] = self.shot[1:] != self.shot[:-1]
        return starts


def shrink(rgb: np.ndarray, width: int) -> np.ndarray:
    """`rgb` halved while it stays at least `width` wide: OpenCV's 2x2 average is its fast
    path (0.12 ms on a 720p frame, where a general area resize takes 1.5 ms), and the
    analysis only needs small pictures."""
    while rgb.shape[1] >= 2 * width:
        rgb = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2),
                         interpolation=cv2.INTER_AREA)
    return rgb


class _FlowTracker:
    """Moves a box with the median Lucas-Kanade motion of corner points inside it."""

    def __init__(self) -> None:
        self._grey: np.ndarray | None = None
        self._scale = 1.0

    def reset(self, small: np.ndarray, full_width: int) -> None:
        self._grey = self._to_grey(small, full_width)

    def _to_grey(self, small: np.ndarray, full_width: int) -> np.ndarray:
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        if grey.shape[1] > SMALL_WIDTH:
            height = round(grey.shape[0] * SMALL_WIDTH / grey.shape[1])
            grey = cv2.resize(grey, (SMALL_WIDTH, height), interpolation=cv2.INTER_AREA)
        self._scale = grey.shape[1] / full_width
        return grey

    def step(self, small: np.ndarray, full_width: int, box: np.ndarray) -> np.ndarray | None:
        grey = self._to_grey(small, full_width)
        previous, self._grey = self._grey, grey
        if previous is None:
            return None
        s = self._scale
        height, width = previous.shape
        x0, y0, x1, y1 = np.clip((box * s).astype(int), 0, [width, height, width, height])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return box
        # Corners searched near the box only (3 px of context for the corner measure):
        # the same corners as over the whole masked frame, for a fraction of the work.
        a0, b0 = max(0, x0 - 3), max(0, y0 - 3)
        near = previous[b0 : min(height, y1 + 3), a0 : min(width, x1 + 3)]
        mask = np.zeros_like(near)
        mask[y0 - b0 : y1 - b0, x0 - a0 : x1 - a0] = 255
        points = cv2.goodFeaturesToTrack(near, 40, 0.01, 3, mask=mask)
        if points is None or len(points) < 4:
            return box
        points = points + np.array([a0, b0], dtype=np.float32)
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, grey, points, None,
                                                    winSize=(15, 15), maxLevel=2)
        ok = status.reshape(-1) == 1
        if ok.sum() < 4:
            return None
        shift = np.median((moved - points).reshape(-1, 2)[ok], axis=0) / s
        return box + np.array([shift[0], shift[1], shift[0], shift[1]], dtype=np.float32)


def analyse_faces(
    frames: Iterable[np.ndarray],
    frame_count: int,
    selector: FaceSelector,
    detect_every: int = 5,
    on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
) -> FaceTrack:
    """One streaming pass over the frames; `on_frame(i, rgb, raw_box)` lets other stages
    look at frames without a second decode.

    The frames are decoded, downscaled and, every `detect_every` frames, searched for
    faces on a read-ahead thread: this thread, which tracks, was the pass's bottleneck
    (benchmarks/RESULTS.md). Detections off that schedule (on a cut, or after a face is
    lost) are made here; each frame's detections are the same whichever thread made them
    (the detector keeps no state between frames)."""
    boxes = np.full((frame_count, 4), np.nan, dtype=np.float32)
    shots = np.zeros(frame_count, dtype=np.int32)
    cuts, flow = CutDetector(), _FlowTracker()
    ahead_detector, detector = FaceDetector(), _LazyDetector()
    current: np.ndarray | None = None
    last_detect = -detect_every
    shot = -1
    last_hit = -1
    size = (0, 0)
    most_faces = 0  # the most faces seen in one frame: to explain a selector that chose none

    def prepared() -> Iterator[tuple[np.ndarray, np.ndarray, list[Detection] | None]]:
        for i, rgb in zip(range(frame_count), decoded, strict=False):
            scheduled = ahead_detector.detect(rgb) if i % detect_every == 0 else None
            yield rgb, shrink(rgb, SMALL_WIDTH), scheduled

    try:
        with closing(read_ahead(frames)) as decoded, closing(read_ahead(prepared())) as ahead:
            for i, (rgb, small, scheduled) in enumerate(ahead):
                size = rgb.shape[:2]
                new_shot = cuts.is_cut(small)  # cut detection and flow look at `small`
                if new_shot:
                    shot += 1
                    current = None
                    flow.reset(small, size[1])
                shots[i] = shot
                tracked = (flow.step(small, size[1], current)
                           if current is not None and not new_shot else None)
                if (new_shot or current is None or i - last_detect >= detect_every
                        or tracked is None):
                    detections = scheduled if scheduled is not None else detector.detect(rgb)
                    most_faces = max(most_faces, len(detections))
                    last_detect = i
                    previous = tracked if tracked is not None else current
                    current = _redetect(detections, previous, selector, size,
                                        fresh=current is None)
                    if current is None and previous is not None:
                        # Lost since the last confirmed sighting: the frames in between
                        # were flow guesses, so pass them through rather than dub a ghost.
                        boxes[last_hit + 1 : i] = np.nan
                    if current is not None:
                        last_hit = i
                else:
                    current = tracked
                if current is not None:
                    boxes[i] = current
                if on_frame is not None:
                    on_frame(i, rgb, current)
    finally:
        ahead_detector.close()  # the read-ahead thread has ended: closing joined it
        detector.close()
    if most_faces and np.isnan(boxes).all() and selector.mode in ("index", "box"):
        raise selector.matched_nothing(most_faces)
    track = FaceTrack(boxes=boxes, shot=shots, frame_size=size)
    smooth_boxes(track)
    return track


class _LazyDetector:
    """The tracking thread's own detector, started only if a detection falls off the
    read-ahead thread's schedule."""

    def __init__(self) -> None:
        self._detector: FaceDetector | None = None

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector.detect(rgb)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()


def _redetect(
    detections: list[Detection],
    previous: np.ndarray | None,
    selector: FaceSelector,
    size: tuple[int, int],
    fresh: bool,
) -> np.ndarray | None:
    if fresh or previous is None:
        chosen = selector.choose(detections, size)
        return None if chosen is None else chosen.box.copy()
    # Keep following the same person: the detection that overlaps where they were.
    if not detections:
        return None
    best = max(detections, key=lambda d: iou(d.box, previous))
    return best.box.copy() if iou(best.box, previous) >= _SAME_PERSON_IOU else None


def smooth_boxes(track: FaceTrack, sigma_frames: float = 1.5) -> None:
    """Gaussian-smooth each run of face frames within a shot, in place."""
    valid = track.has_face
    run_start = None
    for i in range(track.frame_count + 1):
        inside = i < track.frame_count and valid[i] and (
            run_start is None or track.shot[i] == track.shot[run_start]
        )
        if inside and run_start is None:
            run_start = i
        elif not inside and run_start is not None:
            run = slice(run_start, i)
            if i - run_start > 2:
                track.boxes[run] = gaussian_filter1d(track.boxes[run], sigma_frames, axis=0,
                                                     mode="nearest")
            run_start = i if i < track.frame_count and valid[i] else None
