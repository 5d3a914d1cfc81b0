"""Face Mesh landmarks of the lower face (MediaPipe's 468-point topology), measured on a
crop around the tracked face and returned in frame coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipdub.faces._mediapipe import QuietSolution, face_mesh

# Index lists in MediaPipe Face Mesh's canonical topology.
OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
OUTER_LOWER = [146, 91, 181, 84, 17, 314, 405, 321, 375]  # between 61 and 291
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]  # between 78 and 308
# Chin and jaw, with how much each follows the lower lip when the jaw drops.
JAW = {152: 1.0, 175: 1.0, 199: 0.95, 200: 0.9, 18: 0.9, 377: 0.9, 148: 0.9, 400: 0.8,
       176: 0.8, 378: 0.65, 149: 0.65, 379: 0.5, 150: 0.5, 365: 0.35, 136: 0.35, 397: 0.2,
       172: 0.2, 288: 0.08, 58: 0.08}
# Points that never move: nose, cheeks and the face's sides above the mouth.
STILL = [1, 2, 4, 5, 98, 327, 129, 358, 203, 423, 206, 426, 36, 266, 50, 280, 123, 352,
         116, 345, 93, 323, 132, 361, 234, 454, 205, 425, 187, 411, 147, 376, 213, 433]
NOSE_TIP = 1
EYES = (33, 263)  # outer eye corners: the face's scale and horizontal axis
MOUTH_CORNERS = (61, 291)
INNER_CORNERS = (78, 308)
MIDLINE_GAP = (13, 14)  # inner upper / lower lip on the midline


@dataclass(frozen=True)
class FaceShape:
    points: np.ndarray  # (468, 2) float32, frame pixels

    @property
    def eye_axis(self) -> np.ndarray:
        v = self.points[EYES[1]] - self.points[EYES[0]]
        return v / max(float(np.linalg.norm(v)), 1e-6)

    @property
    def down_axis(self) -> np.ndarray:
        x = self.eye_axis
        return np.array([-x[1], x[0]], dtype=np.float32)  # image y grows downwards

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points[EYES[1]] - self.points[EYES[0]]))

    def lip_gap(self) -> float:
        """Inner-lip opening along the face's vertical, averaged over the middle of the mouth."""
        upper = self.points[[81, 13, 311]]
        lower = self.points[[178, 14, 402]]
        return float(np.mean((lower - upper) @ self.down_axis))

    def mouth_width(self) -> float:
        return float(np.linalg.norm(self.points[MOUTH_CORNERS[1]] - self.points[MOUTH_CORNERS[0]]))


def refine_lower_lip(frame: np.ndarray, shape: FaceShape) -> FaceShape:
    """Face Mesh's prior pulls the lower inner lip up on wide-open mouths. Move each lower
    inner point down to the cavity's visible bottom edge (dark above, lip below), so that
    closing the mouth really closes all of it."""
    points = shape.points.copy()
    down, eye = shape.down_axis, shape.eye_distance
    reach = int(max(3, 0.15 * eye))
    steps = np.arange(-reach // 3, reach + 1, dtype=np.float32)
    # Only the mouth's surroundings in grey (every sample lies within `reach` of a lip
    # point): a whole 720p frame's conversion cost more than the search itself.
    lips = points[INNER_UPPER + INNER_LOWER + OUTER_LOWER]
    h, w = frame.shape[:2]
    x0, y0 = (max(0, int(v) - reach - 2) for v in lips.min(axis=0))
    x1, y1 = min(w, int(lips[:, 0].max()) + reach + 3), min(h, int(lips[:, 1].max()) + reach + 3)
    if x1 <= x0 or y1 <= y0:
        return shape
    grey = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]),
                        cv2.COLOR_RGB2GRAY).astype(np.float32)
    origin = np.array([x0, y0], np.float32)
    for upper, lower, outer in zip(INNER_UPPER[1:-1], INNER_LOWER, OUTER_LOWER, strict=True):
        gap = float((points[lower] - points[upper]) @ down)
        if gap < 0.04 * eye:
            continue  # closed here: nothing to find
        line = points[lower][None, :] - origin + steps[:, None] * down[None, :]
        profile = cv2.remap(grey, line[:, 0:1].copy(), line[:, 1:2].copy(),
                            cv2.INTER_LINEAR).reshape(-1)
        darkest = int(np.argmin(profile[: len(profile) // 2 + 1]))
        cavity = float(profile[darkest])
        if cavity > 80:
            continue  # no dark mouth cavity around this point
        # The cavity's bottom edge: the first clear rise after the darkest sample (the lip
        # below is lighter than the cavity; the skin further down is lighter still).
        above = np.nonzero(profile[darkest:] > cavity + 30)[0]
        if len(above) == 0:
            continue
        shift = float(steps[darkest + above[0]])
        limit = float((points[outer] - points[lower]) @ down) - 2.0  # keep some lower lip
        if shift > 0:
            points[lower] = points[lower] + down * shift
            if shift > limit:
                points[outer] = points[outer] + down * (shift - limit)
    return FaceShape(points=points)


class LandmarkTracker:
    """Face Mesh on the crop around the tracked face; temporal smoothing within a shot."""

    def __init__(self, smoothing: float = 0.0, static: bool = False) -> None:
        self._static = static
        self._mesh = self._new_mesh()
        self._smoothing = smoothing
        self._previous: np.ndarray | None = None

    def _new_mesh(self) -> QuietSolution:
        return QuietSolution(lambda: face_mesh.FaceMesh(
            static_image_mode=self._static, max_num_faces=1, refine_landmarks=False,
            min_detection_confidence=0.4, min_tracking_confidence=0.4))

    def reset(self) -> None:
        self._mesh.close()
        self._mesh = self._new_mesh()
        self._previous = None

    def close(self) -> None:
        self._mesh.close()

    def measure(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> FaceShape | None:
        x0, y0, x1, y1 = box
        # Give Face Mesh some context around the face, but no other faces.
        mx, my = (x1 - x0) // 3, (y1 - y0) // 4
        h, w = frame.shape[:2]
        cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
        crop = frame[cy0:cy1, cx0:cx1]
        scale = 1.0
        if max(crop.shape[:2]) < 192:  # small faces: upscale so the mesh sees detail
            scale = 192 / max(crop.shape[:2])
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            self._previous = None
            return None
        lm = result.multi_face_landmarks[0].landmark
        ch, cw = crop.shape[:2]
        pts = np.array([(p.x * cw, p.y * ch) for p in lm[:468]], dtype=np.float32) / scale
        pts += np.array([cx0, cy0], dtype=np.float32)
        if self._previous is not None and self._smoothing > 0:
            pts = self._smoothing * self._previous + (1 - self._smoothing) * pts
        self._previous = pts
        return refine_lower_lip(frame, FaceShape(points=pts))
