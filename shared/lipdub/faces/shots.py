"""Scene-cut detection on a tiny colour thumbnail: cheap enough to run on every frame."""

from __future__ import annotations

import cv2
import numpy as np


class CutDetector:
    """Flags a cut when the colour histogram of consecutive frames changes abruptly."""

    def __init__(self, threshold: float = 0.45) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, rgb: np.ndarray) -> bool:
        """`rgb`: the frame, or a smaller copy of it (the thumbnail is all it needs)."""
        thumb = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
        hist = (hist / max(1.0, hist.sum())).astype(np.float32)
        previous, self._previous = self._previous, hist
        if previous is None:
            return True  # the first frame opens the first shot
        # Bhattacharyya distance: 0 = same distribution, 1 = disjoint.
        return cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA) > self.threshold
