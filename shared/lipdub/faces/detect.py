"""Face detection with MediaPipe's BlazeFace (full-range model, shipped in the wheel)."""

from __future__ import annotations

import numpy as np

from lipdub.faces._mediapipe import QuietSolution, face_detection
from lipdub.faces.boxes import Detection, iou


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


def _dedupe(dets: list[Detection], threshold: float = 0.4) -> list[Detection]:
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) < threshold for k in kept):
            kept.append(d)
    return kept
