"""The `warp` engine: re-animates the source face's own mouth to follow the new audio."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.audio.samples import Samples
from lipdub.engines.base import FaceCrop, MouthPatch
from lipdub.engines.warp.articulation import Articulation, articulation_track
from lipdub.engines.warp.geometry import mouth_target
from lipdub.engines.warp.interior import TeethReference, capture_reference, fill_interior
from lipdub.engines.warp.landmarks import NOSE_TIP, FaceShape, LandmarkTracker
from lipdub.engines.warp.piecewise import backward_maps, fold_free_warp


def reanimate(
    frame: np.ndarray,
    shape: FaceShape,
    openness: float,
    width: float,
    reference: TeethReference | None,
) -> MouthPatch | None:
    """Move this face's lips/jaw/chin to the target articulation; None if it cannot warp
    without folding (the frame then stays as it is)."""
    target = mouth_target(shape, openness, width)
    h, w = frame.shape[:2]
    margin = 0.25 * shape.eye_distance
    both = np.vstack([target.src, target.dst])
    x0, y0 = np.floor(both.min(0) - margin).astype(int)
    x1, y1 = np.ceil(both.max(0) + margin).astype(int)
    # Nothing at or above the tip of the nose ever changes: the region starts below it.
    y0 = max(y0, int(np.floor(shape.points[NOSE_TIP][1])) + 1)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    rw, rh = x1 - x0, y1 - y0
    offset = np.array([x0, y0], dtype=np.float64)
    inside = np.all((target.src - offset >= 1) & (target.src - offset <= [rw - 2, rh - 2]), axis=1)
    moving = np.any(target.src != target.dst, axis=1)
    if np.any(moving & ~inside):
        return None  # a lip or jaw point lies outside the frame or above the nose: skip
    # The region's border is pinned, so the warp fades to nothing before the patch edge.
    border = np.array([[0, 0], [rw - 1, 0], [0, rh - 1], [rw - 1, rh - 1],
                       [rw / 2, 0], [rw / 2, rh - 1], [0, rh / 2], [rw - 1, rh / 2],
                       [rw / 4, 0], [3 * rw / 4, 0]], dtype=np.float64)
    keep = np.nonzero(inside)[0]
    src = np.vstack([target.src[keep] - offset, border])
    dst = np.vstack([target.dst[keep] - offset, border])
    warp = fold_free_warp(src, dst)
    if warp is None:
        return None
    map_x, map_y = backward_maps(warp, rh, rw)
    region = frame[y0:y1, x0:x1]
    warped = cv2.remap(region, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ys, xs = np.mgrid[0:rh, 0:rw]
    moved = (np.abs(map_x - xs) > 1e-3) | (np.abs(map_y - ys) > 1e-3)
    row = {int(r): i for i, r in enumerate(keep)}  # target rows -> rows of this warp
    upper, lower = (row[r] for r in target.midline_rows)
    gap_dst = float((warp.dst[lower] - warp.dst[upper]) @ target.down)  # as actually warped
    ring = [row[r] for r in target.inner_ring]
    painted = fill_interior(warped, warp.dst[ring], target.gap_src, gap_dst, reference)
    mask = np.maximum(moved.astype(np.float32), painted)
    return MouthPatch(box=(x0, y0, x1, y1), pixels=warped, mask=mask, colour_match=False)


class WarpEngine:
    name = "warp"
    batch_size = 8

    def __init__(self) -> None:
        self._tracker = LandmarkTracker()
        self._study_tracker: LandmarkTracker | None = None
        self._articulation: Articulation | None = None
        self.reference: TeethReference | None = None
        self.landmark_misses = 0

    def prepare(self, audio_16k: Samples, fps: float) -> None:
        frames = int(np.ceil(len(audio_16k) / 16_000 * fps)) + 1
        self._articulation = articulation_track(audio_16k, fps, frames)
        if self._study_tracker is not None:
            self._study_tracker.close()
            self._study_tracker = None

    def study(self, frame_index: int, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Remember the most open mouth of the source: its teeth fill opened mouths later."""
        if self._study_tracker is None:
            self._study_tracker = LandmarkTracker(smoothing=0.0, static=True)
        shape = self._study_tracker.measure(rgb, box)
        if shape is None:
            return
        candidate = capture_reference(rgb, shape)
        if candidate is not None and (
            self.reference is None or candidate.openness > self.reference.openness
        ):
            self.reference = candidate

    def close(self) -> None:
        self._tracker.close()
        if self._study_tracker is not None:
            self._study_tracker.close()
            self._study_tracker = None

    def study_state(self) -> dict[str, np.ndarray | float] | None:
        if self.reference is None:
            return None
        return {"pixels": self.reference.pixels, "mask": self.reference.mask,
                "openness": self.reference.openness}

    def load_study_state(self, state: dict | None) -> None:
        self.reference = None if state is None else TeethReference(
            pixels=np.asarray(state["pixels"], np.uint8),
            mask=np.asarray(state["mask"], np.float32), openness=float(state["openness"]))

    def articulation_at(self, frame_index: int) -> tuple[float, float]:
        assert self._articulation is not None, "prepare() must run before render()"
        if frame_index >= len(self._articulation.openness):
            return 0.0, 0.0
        return (float(self._articulation.openness[frame_index]),
                float(self._articulation.width[frame_index]))

    def render(self, crops: list[FaceCrop]) -> list[MouthPatch]:
        patches = []
        for crop in crops:
            if crop.shot_start:
                self._tracker.reset()
            shape = self._tracker.measure(crop.frame, crop.box)
            patch = None
            if shape is not None:
                openness, width = self.articulation_at(crop.frame_index)
                patch = reanimate(crop.frame, shape, openness, width, self.reference)
            else:
                self.landmark_misses += 1
            patches.append(patch or _unchanged(crop))
        return patches


def _unchanged(crop: FaceCrop) -> MouthPatch:
    x0, y0, x1, y1 = crop.box
    return MouthPatch(box=crop.box, pixels=crop.pixels.copy(),
                      mask=np.zeros((y1 - y0, x1 - x0), dtype=np.float32), colour_match=False)
