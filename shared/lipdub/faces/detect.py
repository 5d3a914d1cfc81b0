"""Face detection with MediaPipe's BlazeFace (full-range model, shipped in the wheel)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.faces._mediapipe import QuietSolution, face_detection


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1 in pixels
    score: float

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


class FaceDetector:
    def __init__(self, min_confidence: float = 0.5) -> None:
        self._model = QuietSolution(lambda: face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence))

    def close(self) -> None:
        self._model.close()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = self._detect_once(rgb, offset=(0, 0))
        if found:
            return found
        # BlazeFace sees the frame at 192 px: small faces in wide frames vanish. Retry on
        # three overlapping tiles, two thirds of the width each, so each face is seen larger
        # (an ~80 px face in 720p is then found).
        h, w = rgb.shape[:2]
        tiles: list[Detection] = []
        for x0 in (0, w // 3, 2 * w // 3 - (w // 3) % 2):
            tile = rgb[:, x0 : min(w, x0 + w // 2 + w // 6)]
            tiles.extend(self._detect_once(tile, offset=(x0, 0)))
        return _dedupe(tiles)

    def _detect_once(self, rgb: np.ndarray, offset: tuple[int, int]) -> list[Detection]:
        h, w = rgb.shape[:2]
        result = self._model.process(rgb)
        out: list[Detection] = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array(
                [rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                 (rel.ymin + rel.height) * h],
                dtype=np.float32,
            )
            box += np.array([offset[0], offset[1], offset[0], offset[1]], dtype=np.float32)
            out.append(Detection(box=box, score=float(det.score[0])))
        return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _dedupe(dets: list[Detection], threshold: float = 0.4) -> list[Detection]:
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) < threshold for k in kept):
            kept.append(d)
    return kept
